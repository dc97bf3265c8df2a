/**
 * The validated, compiled form of an AWS IoT provisioning template (protocols.md "AWS provisioning templates").
 *
 * `parseTemplate` turns a template body into a `ProvisioningTemplate`; `evaluateTemplate` turns that plus the
 * request's parameters into a `ResourcePlan`. Everything here is plain read-only data: intrinsic functions
 * are compiled into `TemplateExpression` trees whose references are already resolved, so evaluation cannot
 * meet an unknown name. Each node keeps its JSON `path` so evaluation errors point into the original body.
 */

/** The two template types of AWS IoT (CreateProvisioningTemplate `templateType`); bulk registration uses JITP. */
export type ProvisioningTemplateType = 'FLEET_PROVISIONING' | 'JITP';

/** The resource types a provisioning template may declare. */
export type TemplateResourceType = 'AWS::IoT::Thing' | 'AWS::IoT::Certificate' | 'AWS::IoT::Policy';

/** What a resource does when it already exists (provisioning templates, "Override settings"). */
export type OverrideAction = 'DO_NOTHING' | 'REPLACE' | 'FAIL' | 'MERGE';

/** The override actions allowed where MERGE is not (thing type name, certificate status). */
export type NonMergeOverrideAction = Exclude<OverrideAction, 'MERGE'>;

/** The parameter types Gatehouse accepts: AWS templates use `String`; `Number` also checks the value is numeric. */
export type TemplateParameterType = 'String' | 'Number';

/** One entry of the `Parameters` section. */
export interface TemplateParameter {
  readonly name: string;
  readonly type: TemplateParameterType;
  /** The value used when the request does not supply one (numbers are kept as their decimal string). */
  readonly default?: string;
  readonly description?: string;
}

/** A literal scalar of the template (JSON string, number, boolean or null). */
export type TemplateScalar = string | number | boolean | null;

/** What a `Ref` (or a `${Name}` of `Fn::Sub`) resolves to, decided at parse time. */
export type RefTarget =
  /** A declared parameter, or (JITP) an undeclared `AWS::IoT::Certificate::*` field of the device certificate. */
  | { readonly kind: 'parameter'; readonly name: string }
  /** `AWS::IoT::Certificate::Id`: only ever filled by the service (`EvaluateTemplateInput.certificateId`). */
  | { readonly kind: 'certificateId' }
  /** A resource's logical id: a thing yields its name, a certificate its id, a policy its name. */
  | { readonly kind: 'resource'; readonly logicalId: string }
  /** `AWS::NoValue` (extension, as in CloudFormation): removes the enclosing property or list element. */
  | { readonly kind: 'noValue' };

/** One piece of an `Fn::Sub` template string. */
export type SubPart =
  | { readonly kind: 'text'; readonly text: string }
  /** A `${Name}` bound by the variable map of the `[template, {vars}]` form. */
  | { readonly kind: 'variable'; readonly name: string }
  | { readonly kind: 'ref'; readonly name: string; readonly target: RefTarget };

/** A value of the template: a literal, a literal list or object, or an intrinsic function call. */
export type TemplateExpression =
  | { readonly kind: 'literal'; readonly path: string; readonly value: TemplateScalar }
  | { readonly kind: 'list'; readonly path: string; readonly items: readonly TemplateExpression[] }
  | { readonly kind: 'object'; readonly path: string; readonly entries: readonly (readonly [string, TemplateExpression])[] }
  | { readonly kind: 'ref'; readonly path: string; readonly name: string; readonly target: RefTarget }
  | { readonly kind: 'join'; readonly path: string; readonly delimiter: string; readonly values: TemplateExpression }
  | { readonly kind: 'select'; readonly path: string; readonly index: TemplateExpression; readonly values: TemplateExpression }
  | { readonly kind: 'split'; readonly path: string; readonly delimiter: string; readonly source: TemplateExpression }
  | {
      readonly kind: 'findInMap';
      readonly path: string;
      readonly mapName: TemplateExpression;
      readonly topLevelKey: TemplateExpression;
      readonly secondLevelKey: TemplateExpression;
    }
  | {
      readonly kind: 'sub';
      readonly path: string;
      readonly parts: readonly SubPart[];
      readonly variables: readonly (readonly [string, TemplateExpression])[];
    }
  | {
      readonly kind: 'if';
      readonly path: string;
      readonly condition: string;
      readonly whenTrue: TemplateExpression;
      readonly whenFalse: TemplateExpression;
    };

/** A condition of the `Conditions` section (Gatehouse extension, CloudFormation syntax). */
export type ConditionExpression =
  | { readonly kind: 'equals'; readonly path: string; readonly left: TemplateExpression; readonly right: TemplateExpression }
  | { readonly kind: 'not'; readonly path: string; readonly operand: ConditionExpression }
  | { readonly kind: 'and'; readonly path: string; readonly operands: readonly ConditionExpression[] }
  | { readonly kind: 'or'; readonly path: string; readonly operands: readonly ConditionExpression[] }
  /** `{"Condition": "name"}`: the value of another declared condition. */
  | { readonly kind: 'condition'; readonly path: string; readonly name: string };

/** Literal value of a `Mappings` leaf: a string (numbers and booleans are kept as strings) or a list of strings. */
export type MappingValue = string | readonly string[];

/** A declared `AWS::IoT::Thing`. */
export interface TemplateThingResource {
  readonly kind: 'thing';
  readonly logicalId: string;
  readonly path: string;
  readonly condition?: string;
  readonly thingName: TemplateExpression;
  /** `AttributePayload`: literal attribute names, each with its value expression. */
  readonly attributes: readonly (readonly [string, TemplateExpression])[];
  readonly thingTypeName?: TemplateExpression;
  /** `ThingGroups`: a list literal, or a function that yields a list. */
  readonly thingGroups?: TemplateExpression;
  readonly billingGroup?: TemplateExpression;
  readonly override: ThingOverride;
}

/** How an existing thing is treated; DO_NOTHING where the template says nothing. */
export interface ThingOverride {
  readonly attributes: OverrideAction;
  readonly thingTypeName: NonMergeOverrideAction;
  readonly thingGroups: OverrideAction;
}

/** The one way a certificate resource names its certificate. */
export type TemplateCertificateSource =
  | { readonly kind: 'id'; readonly certificateId: TemplateExpression }
  | { readonly kind: 'pem'; readonly certificatePem: TemplateExpression; readonly caCertificatePem?: TemplateExpression }
  | { readonly kind: 'csr'; readonly csr: TemplateExpression };

/** A declared `AWS::IoT::Certificate`. */
export interface TemplateCertificateResource {
  readonly kind: 'certificate';
  readonly logicalId: string;
  readonly path: string;
  readonly condition?: string;
  readonly source: TemplateCertificateSource;
  /** `Status`; absent means ACTIVE (AWS default). */
  readonly status?: TemplateExpression;
  readonly override: CertificateOverride;
}

/** How an existing certificate's status is treated; DO_NOTHING where the template says nothing. */
export interface CertificateOverride {
  readonly status: NonMergeOverrideAction;
}

/** A declared `AWS::IoT::Policy`: an existing policy by name, or an inline document. */
export interface TemplatePolicyResource {
  readonly kind: 'policy';
  readonly logicalId: string;
  readonly path: string;
  readonly condition?: string;
  readonly policy:
    | { readonly kind: 'name'; readonly policyName: TemplateExpression }
    /** A JSON string, or (as in AWS's fleet example) a JSON object, possibly holding functions. */
    | { readonly kind: 'document'; readonly document: TemplateExpression };
}

/** Any declared resource, discriminated by `kind`. */
export type TemplateResource = TemplateThingResource | TemplateCertificateResource | TemplatePolicyResource;

/** The validated, compiled template. Plain read-only data; build it only with `parseTemplate`. */
export interface ProvisioningTemplate {
  readonly type: ProvisioningTemplateType;
  /** The template name given to `parseTemplate`; it prefixes generated policy names. */
  readonly name?: string;
  readonly parameters: readonly TemplateParameter[];
  /** `Mappings`: map name → top-level key → second-level key → value. */
  readonly mappings: readonly (readonly [string, readonly (readonly [string, readonly (readonly [string, MappingValue])[]])[]])[];
  readonly conditions: readonly (readonly [string, ConditionExpression])[];
  /** In declaration order. */
  readonly resources: readonly TemplateResource[];
  /** `DeviceConfiguration` (fleet provisioning only): key → literal or function. */
  readonly deviceConfiguration: readonly (readonly [string, TemplateExpression])[];
}
