/**
 * The least-privilege policy of a fleet-provisioning claim certificate (protocols.md "AWS fleet provisioning
 * MQTT API": a typical claim policy).
 */
import { PolicyErrors } from './errors.ts';
import { parsePolicyDocument } from './policy-document.ts';
import type { PolicyDocument } from './policy-document.ts';

/** Template names: 1–36 characters of `[0-9A-Za-z_-]` (protocols.md "AWS fleet provisioning MQTT API"). */
const TEMPLATE_NAME = /^[0-9A-Za-z_-]{1,36}$/;

/** Pins the claim policy to one region and account; by default both are `*`. */
export interface ClaimPolicyOptions {
  readonly region?: string;
  readonly accountId?: string;
}

/**
 * The policy a claim certificate gets for provisioning template `templateName`: connect with any client id;
 * publish only the requests (`…/json`, `…/cbor`) and receive and subscribe only under `$aws/certificates/create/*`,
 * `$aws/certificates/create-from-csr/*` and `$aws/provisioning-templates/<templateName>/provision/*`. Nothing else
 * (no other template, no shadow, no other topic). Throws `POLICY_TEMPLATE_NAME_INVALID`.
 */
export function leastPrivilegeClaimPolicy(templateName: string, options: ClaimPolicyOptions = {}): PolicyDocument {
  if (!TEMPLATE_NAME.test(templateName)) {
    throw PolicyErrors.error('POLICY_TEMPLATE_NAME_INVALID', 'The provisioning template name must be 1-36 characters of [0-9A-Za-z_-].', {
      details: { templateName },
    });
  }
  const prefix = `arn:aws:iot:${options.region ?? '*'}:${options.accountId ?? '*'}:`;
  const topics = ['$aws/certificates/create/*', '$aws/certificates/create-from-csr/*', `$aws/provisioning-templates/${templateName}/provision/*`];
  // requests only: the answers (…/accepted, …/rejected) are the service's to publish (the gateway refuses them too)
  const requests = ['$aws/certificates/create', '$aws/certificates/create-from-csr', `$aws/provisioning-templates/${templateName}/provision`].flatMap((t) => [`${t}/json`, `${t}/cbor`]);
  return parsePolicyDocument({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${prefix}client/*`] },
      { Effect: 'Allow', Action: ['iot:Publish'], Resource: requests.map((topic) => `${prefix}topic/${topic}`) },
      { Effect: 'Allow', Action: ['iot:Receive'], Resource: topics.map((topic) => `${prefix}topic/${topic}`) },
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: topics.map((topic) => `${prefix}topicfilter/${topic}`) },
    ],
  });
}
