/**
 * Resource ARNs as policies name them (protocols.md "AWS IoT policy language": resources are
 * `arn:aws:iot:<region>:<account>:<kind>/<name>`).
 */

/** The resource kinds of AWS IoT ARNs that Gatehouse authorizes. */
export type ResourceKind = 'client' | 'topic' | 'topicfilter' | 'thing' | 'thinggroup' | 'rolealias' | 'cert' | 'cacert';

/** Where a resource lives: the tenant's region and account id (and, rarely, a partition other than `aws`). */
export interface ResourceArnScope {
  readonly region: string;
  readonly accountId: string;
  readonly partition?: string;
}

/**
 * Builds the ARN `authorize` expects: `resourceArn('topic', 'a/b', ctx)` →
 * `arn:aws:iot:<region>:<account>:topic/a/b`. `iot:Connect` takes `client/<clientId>`, `iot:Publish`,
 * `iot:Receive` and `iot:RetainPublish` take `topic/<topic>`, `iot:Subscribe` takes `topicfilter/<filter>`.
 * The name is used verbatim (MQTT `+`/`#` included).
 */
export function resourceArn(kind: ResourceKind, name: string, scope: ResourceArnScope): string {
  return `arn:${scope.partition ?? 'aws'}:iot:${scope.region}:${scope.accountId}:${kind}/${name}`;
}
