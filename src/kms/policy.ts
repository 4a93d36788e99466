/**
 * Key policies: parsing and evaluation, as AWS KMS evaluates the key policy
 * of one key for one request, limited to what KMS itself decides (IAM
 * identity policies are out of scope; see docs/compatibility.md).
 *
 * Pure: no store, no clock, no errors of the KMS layer. `parsePolicy`
 * throws PolicyError with the reason; `evaluatePolicy` answers Allow, Deny
 * (an explicit Deny, which always wins) or ImplicitDeny (no statement
 * allows). A principal matches a statement when the statement names it by
 * ARN, names its account (`111122223333` or `arn:aws:iam::111122223333:root`:
 * the account's principals, as when the IAM side allows everything), or is
 * `*`.
 */

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/** What one request asks of one key's policy. */
export interface PolicyRequest {
  /** `kms:GenerateMac`, … */
  readonly action: string;
  readonly principalArn: string;
  readonly principalAccount: string;
  readonly resourceArn: string;
  /** Condition keys present in the request, lower-cased (`kms:macalgorithm`), with their values. */
  readonly context: ReadonlyMap<string, string>;
}

export type Decision = 'Allow' | 'Deny' | 'ImplicitDeny';

type Matcher = (value: string) => boolean;

interface Condition {
  readonly key: string;
  readonly test: (value: string | undefined) => boolean;
}

interface Statement {
  readonly allow: boolean;
  /** undefined: NotPrincipal was used and `notPrincipal` holds the matcher. */
  readonly principal: ((r: PolicyRequest) => boolean) | undefined;
  readonly notPrincipal: ((r: PolicyRequest) => boolean) | undefined;
  readonly action: Matcher;
  readonly actionNegated: boolean;
  readonly resource: Matcher;
  readonly resourceNegated: boolean;
  readonly conditions: readonly Condition[];
}

export interface ParsedPolicy {
  readonly statements: readonly Statement[];
}

const ACCOUNT_RE = /^\d{12}$/;
const ROOT_RE = /^arn:[a-z-]+:iam::(\d{12}):root$/;
const ROLE_RE = /^arn:([a-z-]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;
const ASSUMED_RE = /^arn:([a-z-]+):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/;
const PRINCIPAL_RE = /^arn:[a-z-]+:(iam|sts)::\d{12}:[^\s]+$/;

/** AWS's condition operators (without `IfExists` and the set prefixes), as value tests. */
const OPERATORS: Record<string, { negated: boolean; test: (have: string, want: string) => boolean }> = {
  stringequals: { negated: false, test: (h, w) => h === w },
  stringnotequals: { negated: true, test: (h, w) => h === w },
  stringequalsignorecase: { negated: false, test: (h, w) => h.toLowerCase() === w.toLowerCase() },
  stringnotequalsignorecase: { negated: true, test: (h, w) => h.toLowerCase() === w.toLowerCase() },
  stringlike: { negated: false, test: (h, w) => globMatcher(w, false)(h) },
  stringnotlike: { negated: true, test: (h, w) => globMatcher(w, false)(h) },
  arnequals: { negated: false, test: (h, w) => globMatcher(w, false)(h) },
  arnlike: { negated: false, test: (h, w) => globMatcher(w, false)(h) },
  arnnotequals: { negated: true, test: (h, w) => globMatcher(w, false)(h) },
  arnnotlike: { negated: true, test: (h, w) => globMatcher(w, false)(h) },
  bool: { negated: false, test: (h, w) => h.toLowerCase() === w.toLowerCase() },
};

function fail(message: string): never {
  throw new PolicyError(message);
}

/** `*` and `?` wildcards (IAM's), anchored; `ignoreCase` for actions. */
function globMatcher(pattern: string, ignoreCase: boolean): Matcher {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*') && !pattern.includes('?')) {
    if (!ignoreCase) return (v) => v === pattern;
    const p = pattern.toLowerCase();
    return (v) => v.toLowerCase() === p;
  }
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const re = new RegExp(`^${source}$`, ignoreCase ? 'is' : 's');
  return (v) => re.test(v);
}

function stringList(v: unknown, what: string): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) fail(`${what} must be a string or a non-empty list of strings`);
  for (const s of list) if (typeof s !== 'string' || s === '') fail(`${what} must contain non-empty strings`);
  return list as string[];
}

function anyOf(matchers: readonly Matcher[]): Matcher {
  return matchers.length === 1 ? matchers[0]! : (v) => matchers.some((m) => m(v));
}

/** One `AWS` principal value → a test of the request's principal. */
function principalTest(value: string): (r: PolicyRequest) => boolean {
  if (value === '*') return () => true;
  if (ACCOUNT_RE.test(value)) return (r) => r.principalAccount === value;
  const root = ROOT_RE.exec(value);
  if (root) {
    const account = root[1];
    return (r) => r.principalAccount === account;
  }
  if (!PRINCIPAL_RE.test(value) || value.includes('*'))
    fail(`Policy contains a statement with one or more invalid principals: ${value}`);
  const role = ROLE_RE.exec(value);
  return (r) => {
    if (r.principalArn === value) return true;
    if (!role) return false;
    // A role's sessions act as the role (the IAM path is not part of the session ARN).
    const s = ASSUMED_RE.exec(r.principalArn);
    return s !== null && s[1] === role[1] && s[2] === role[2] && s[3] === role[3];
  };
}

function parsePrincipal(v: unknown): (r: PolicyRequest) => boolean {
  if (v === '*') return () => true;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('Principal must be "*" or an object');
  const tests: ((r: PolicyRequest) => boolean)[] = [];
  for (const [type, values] of Object.entries(v as Record<string, unknown>)) {
    const list = stringList(values, `Principal.${type}`);
    // Service, Federated and CanonicalUser principals are valid but never a caller of this endpoint.
    if (type === 'AWS') tests.push(...list.map(principalTest));
    else if (type !== 'Service' && type !== 'Federated' && type !== 'CanonicalUser')
      fail(`Policy contains a statement with an unknown principal type: ${type}`);
  }
  return (r) => tests.some((t) => t(r));
}

function parseConditions(v: unknown): Condition[] {
  if (v === undefined) return [];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('Condition must be an object');
  const out: Condition[] = [];
  for (const [rawOperator, block] of Object.entries(v as Record<string, unknown>)) {
    let name = rawOperator.toLowerCase();
    let set: 'any' | 'all' | undefined;
    if (name.startsWith('foranyvalue:')) [set, name] = ['any', name.slice(12)];
    else if (name.startsWith('forallvalues:')) [set, name] = ['all', name.slice(13)];
    const ifExists = name.endsWith('ifexists');
    if (ifExists) name = name.slice(0, -8);
    if (block === null || typeof block !== 'object' || Array.isArray(block))
      fail(`Condition ${rawOperator} must map condition keys to values`);
    for (const [rawKey, values] of Object.entries(block as Record<string, unknown>)) {
      const key = rawKey.toLowerCase();
      const wanted = (Array.isArray(values) ? values : [values]).map((x) =>
        typeof x === 'boolean' || typeof x === 'number' ? String(x) : x,
      );
      if (wanted.length === 0 || wanted.some((x) => typeof x !== 'string'))
        fail(`Condition ${rawOperator} ${rawKey} must have string values`);
      const want = wanted as string[];
      if (name === 'null') {
        const absent = want[0]!.toLowerCase() === 'true';
        out.push({ key, test: (have) => (have === undefined) === absent });
        continue;
      }
      const op = OPERATORS[name];
      if (op === undefined) fail(`Policy contains an unsupported condition operator: ${rawOperator}`);
      out.push({
        key,
        test: (have) => {
          // A key missing from the request: IfExists and ForAllValues pass, negated operators pass, the rest fail.
          if (have === undefined) return ifExists || set === 'all' || (op.negated && set !== 'any');
          const hit = want.some((w) => op.test(have, w));
          return op.negated ? !hit : hit;
        },
      });
    }
  }
  return out;
}

function parseStatement(s: unknown, i: number): Statement {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) fail(`Statement ${i} must be an object`);
  const o = s as Record<string, unknown>;
  if (o.Effect !== 'Allow' && o.Effect !== 'Deny') fail(`Statement ${i}: Effect must be "Allow" or "Deny"`);
  if ((o.Principal === undefined) === (o.NotPrincipal === undefined))
    fail(`Statement ${i}: exactly one of Principal and NotPrincipal is required in a key policy`);
  if ((o.Action === undefined) === (o.NotAction === undefined))
    fail(`Statement ${i}: exactly one of Action and NotAction is required`);
  if ((o.Resource === undefined) === (o.NotResource === undefined))
    fail(`Statement ${i}: exactly one of Resource and NotResource is required`);
  const actions = stringList(o.Action ?? o.NotAction, `Statement ${i} Action`);
  for (const a of actions)
    if (a !== '*' && !/^[a-z0-9-]+:[A-Za-z0-9*?]+$/i.test(a)) fail(`Statement ${i}: invalid action ${a}`);
  return {
    allow: o.Effect === 'Allow',
    principal: o.Principal === undefined ? undefined : parsePrincipal(o.Principal),
    notPrincipal: o.NotPrincipal === undefined ? undefined : parsePrincipal(o.NotPrincipal),
    action: anyOf(actions.map((a) => globMatcher(a, true))),
    actionNegated: o.Action === undefined,
    resource: anyOf(
      stringList(o.Resource ?? o.NotResource, `Statement ${i} Resource`).map((r) => globMatcher(r, false)),
    ),
    resourceNegated: o.Resource === undefined,
    conditions: parseConditions(o.Condition),
  };
}

/** Parses and checks a key policy document (its JSON text). Throws PolicyError. */
export function parsePolicy(text: string): ParsedPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    fail('The policy is not valid JSON.');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail('The policy must be a JSON object.');
  const d = doc as Record<string, unknown>;
  if (d.Version !== undefined && d.Version !== '2012-10-17' && d.Version !== '2008-10-17')
    fail(`Unsupported policy Version ${String(d.Version)}`);
  const list = Array.isArray(d.Statement) ? d.Statement : d.Statement === undefined ? [] : [d.Statement];
  if (list.length === 0) fail('The policy must contain at least one Statement.');
  return { statements: list.map(parseStatement) };
}

function applies(s: Statement, r: PolicyRequest): boolean {
  const principal = s.principal ? s.principal(r) : !s.notPrincipal!(r);
  if (!principal) return false;
  if (s.action(r.action) === s.actionNegated) return false;
  if (s.resource(r.resourceArn) === s.resourceNegated) return false;
  for (const c of s.conditions) if (!c.test(r.context.get(c.key))) return false;
  return true;
}

/** The key policy's answer for one request: an explicit Deny wins over any Allow. */
export function evaluatePolicy(policy: ParsedPolicy, r: PolicyRequest): Decision {
  let allowed = false;
  for (const s of policy.statements) {
    if (!applies(s, r)) continue;
    if (!s.allow) return 'Deny';
    allowed = true;
  }
  return allowed ? 'Allow' : 'ImplicitDeny';
}

/**
 * The default key policy AWS writes when CreateKey has no Policy, in the
 * layout GetKeyPolicy returns it: the account's root principal may do
 * everything, which (IAM allowing) lets every principal of the account.
 */
export function defaultPolicy(partition: string, accountId: string): string {
  return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:${partition}:iam::${accountId}:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`;
}
