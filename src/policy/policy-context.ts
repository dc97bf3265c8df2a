/**
 * What a connection contributes to policy evaluation: the values of the policy variables
 * (protocols.md "AWS IoT policy language" → Variables).
 *
 * The gateway builds one `PolicyContext` per connection, after authentication, and passes the same object to
 * every `authorize` call of that connection. Nothing in it is copied or normalized per call.
 */

/**
 * Values of one distinguished name (or alternative name), by attribute.
 *
 * Keys are the AWS field names used in the variables (`CommonName`, `Country`, `Organization`,
 * `OrganizationalUnit`, `DistinguishedNameQualifier`, `State`, `Locality`, `SerialNumber`, `Title`, `Surname`,
 * `GivenName`, `Initials`, `Pseudonym`, `GenerationQualifier`, `EmailAddress`). The short OpenSSL /
 * @peculiar/x509 names are accepted as aliases (see {@link CERTIFICATE_NAME_FIELDS}); when both spellings are
 * present the AWS name wins. Values keep certificate order (`.1` is the first).
 */
export type CertificateNameValues = Readonly<Record<string, readonly string[]>>;

/** The thing the connection's certificate is attached to (absent when there is none). */
export interface PolicyThing {
  readonly thingName: string;
  readonly thingTypeName?: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
}

/** The fields of the connection's client certificate that policy variables can read. */
export interface PolicyCertificate {
  readonly subject: CertificateNameValues;
  readonly issuer: CertificateNameValues;
  /**
   * Subject alternative names by AWS field name: `RFC822Name`, `DNSName`, `DirectoryName`,
   * `UniformResourceIdentifier`, `IPAddress` (aliases `email`, `dns`, `dirName`, `uri`/`url`, `ip`).
   */
  readonly subjectAlternativeName?: CertificateNameValues | undefined;
  /** Issuer alternative names, same keys as {@link subjectAlternativeName}. */
  readonly issuerAlternativeName?: CertificateNameValues | undefined;
  /** The certificate serial number as the gateway renders it (for `${iot:Certificate.SerialNumber}`). */
  readonly serialNumber?: string | undefined;
}

/**
 * Everything `authorize` needs to know about a connection. Build it once per connection.
 *
 * A value that is absent or an empty string makes every variable reading it unresolvable.
 */
export interface PolicyContext {
  /** The MQTT client identifier of the connection (`${iot:ClientId}`). */
  readonly clientId: string;
  /** The thing the certificate is attached to (`${iot:Connection.Thing.*}`). */
  readonly thing?: PolicyThing | undefined;
  /** Whether the certificate is attached to a thing (`${iot:Connection.Thing.IsAttached}`). */
  readonly isAttached: boolean;
  /** The authenticated client certificate (`${iot:Certificate.*}`). */
  readonly certificate?: PolicyCertificate | undefined;
  /** The tenant's region, used to build resource ARNs. */
  readonly region: string;
  /** The tenant's account id, used to build resource ARNs. */
  readonly accountId: string;
}

/**
 * Distinguished-name fields a `${iot:Certificate.Subject.<Field>}` / `${iot:Certificate.Issuer.<Field>}` variable
 * may name, with the aliases looked up (in order) when the AWS name is not a key of the context record. The
 * thirteen AWS fields plus `Locality` and `EmailAddress` (Gatehouse extensions).
 */
export const CERTIFICATE_NAME_FIELDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  CommonName: ['CN', 'commonName'],
  Country: ['C', 'countryName'],
  Organization: ['O', 'organizationName'],
  OrganizationalUnit: ['OU', 'organizationalUnitName'],
  DistinguishedNameQualifier: ['dnQualifier'],
  State: ['ST', 'stateOrProvinceName'],
  Locality: ['L', 'localityName'],
  SerialNumber: ['serialNumber'],
  Title: ['T', 'title'],
  Surname: ['SN', 'surname'],
  GivenName: ['GN', 'G', 'givenName'],
  Initials: ['I', 'initials'],
  Pseudonym: ['pseudonym'],
  GenerationQualifier: ['generationQualifier'],
  EmailAddress: ['E', 'emailAddress'],
});

/** Alternative-name fields of `${iot:Certificate.SubjectAlternativeName.<Field>}` (and Issuer…), with aliases. */
export const CERTIFICATE_ALT_NAME_FIELDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  RFC822Name: ['email'],
  DNSName: ['dns'],
  DirectoryName: ['dirName'],
  UniformResourceIdentifier: ['uri', 'url'],
  IPAddress: ['ip'],
});
