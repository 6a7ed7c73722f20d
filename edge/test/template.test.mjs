//! template.yaml carries edge/viewer-request.min.js (the minified viewer-request function) and
//! edge/viewer-response.js verbatim
//! (`gen-template.mjs --check`), the check really fails on a changed function, the YAML block
//! gives back the exact bytes (also for unusual line endings), and the edge part of the template
//! is wired as designed: origin group failover, cache keys, TTLs (errors about the viewer's own
//! request never cached), both functions on every behavior, the KeyValueStore (empty at
//! creation) and the tenant policy table (the transformer's alone), Origin Access Control and
//! the permissions that go with it.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BEGIN,
  END,
  DEFAULT_FUNCTION,
  DEFAULT_RESPONSE_FUNCTION,
  DEFAULT_TEMPLATE,
  checkTemplate,
  functionCodeBlock,
  markers,
  withFunction,
} from '../gen-template.mjs';

const GEN = fileURLToPath(new URL('../gen-template.mjs', import.meta.url));
const templateText = readFileSync(DEFAULT_TEMPLATE, 'utf8');
const code = readFileSync(DEFAULT_FUNCTION, 'utf8');
const responseCode = readFileSync(DEFAULT_RESPONSE_FUNCTION, 'utf8');

// The `yaml` package (a devDependency of the root package.json: `npm ci`, run by .ci/setup)
// with CloudFormation's short-form intrinsics, resolved to their long form. Without it the
// tests that parse YAML fail (they never skip); the others still run.
const YAML = (await import('yaml').catch(() => null))?.default;
const MISSING = 'the yaml package is missing: run `npm ci` at the repo root (.ci/setup-test does)';
const NAMES = ['Ref', 'Sub', 'GetAtt', 'If', 'Not', 'Equals', 'Select', 'Split', 'Join', 'And', 'Or', 'Condition'];
const longName = (n) => (n === 'Ref' || n === 'Condition' ? n : `Fn::${n}`);
const customTags = NAMES.flatMap((n) => [
  { tag: `!${n}`, resolve: (s) => ({ [longName(n)]: n === 'GetAtt' ? s.split('.') : s }) },
  { tag: `!${n}`, collection: 'seq', resolve: (seq) => ({ [longName(n)]: seq.toJSON() }) },
  { tag: `!${n}`, collection: 'map', resolve: (map) => ({ [longName(n)]: map.toJSON() }) },
]);
const parseCfn = (text) => {
  assert.ok(YAML, MISSING);
  return YAML.parse(text, { customTags });
};

function gen(...args) {
  return spawnSync(process.execPath, [GEN, ...args], { encoding: 'utf8' });
}

function tmp(t) {
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-gen-template-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A minimal template with the markers, at the indentation of the real one. */
const MINI = [
  'Resources:',
  '  Fn:',
  '    Type: AWS::CloudFront::Function',
  '    Properties:',
  `      ${BEGIN} (test)`,
  '      FunctionCode: |',
  '        old',
  `      ${END}`,
  '      AutoPublish: true',
  '',
].join('\n');
/** MINI with the viewer-response block as well. */
const [RESPONSE_BEGIN, RESPONSE_END] = markers('viewer-response.js');
const MINI2 = [
  MINI.trimEnd(),
  '  Fn2:',
  '    Type: AWS::CloudFront::Function',
  '    Properties:',
  `      ${RESPONSE_BEGIN} (test)`,
  '      FunctionCode: |',
  '        old',
  `      ${RESPONSE_END}`,
  '',
].join('\n');

test('gen-template --check passes on the committed files', () => {
  const r = gen('--check');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(checkTemplate(templateText, code).ok, true);
  assert.equal(checkTemplate(templateText, responseCode, 'viewer-response.js').ok, true);
});

test('the FunctionCode CloudFormation reads is each function file byte for byte', () => {
  const t = parseCfn(templateText);
  for (const [id, text] of [
    ['ViewerRequestFunction', code],
    ['ViewerResponseFunction', responseCode],
  ]) {
    const fn = t.Resources[id];
    assert.equal(fn.Type, 'AWS::CloudFront::Function');
    assert.equal(fn.Properties.FunctionCode, text, id);
    assert.ok(Buffer.byteLength(fn.Properties.FunctionCode) <= 10240, 'CloudFront Functions: at most 10 KB');
  }
});

test('the check fails on any change of the function, and regenerating fixes it', () => {
  for (const changed of [
    code + '// one more line\n',
    code.replace('hotlink refused', 'hotlink refusedX'),
    code.replace(/\n$/, ''),
    code + '\n',
  ]) {
    const r = checkTemplate(templateText, changed);
    assert.equal(r.ok, false);
    assert.equal(checkTemplate(withFunction(templateText, changed), changed).ok, true);
  }
  // Regenerating an up-to-date template changes nothing.
  assert.equal(withFunction(templateText, code), templateText);
  // The two blocks are independent.
  const changed = responseCode.replace('Vary: *', 'Vary: any');
  assert.equal(checkTemplate(templateText, changed, 'viewer-response.js').ok, false);
  const regenerated = withFunction(templateText, changed, 'viewer-response.js');
  assert.equal(checkTemplate(regenerated, changed, 'viewer-response.js').ok, true);
  assert.equal(checkTemplate(regenerated, code).ok, true);
});

test('line endings survive: no final newline, one, several; blank and indented lines', () => {
  for (const c of [
    'var a = 1;',
    'var a = 1;\n',
    'var a = 1;\n\n\n',
    'var a = 1;\n\n  var b = "x: #y";\n\t// tab\n    \nend();\n',
  ]) {
    const t = parseCfn(withFunction(MINI, c));
    assert.equal(t.Resources.Fn.Properties.FunctionCode, c, JSON.stringify(c));
    assert.equal(t.Resources.Fn.Properties.AutoPublish, true);
  }
});

test('refuses what a YAML block cannot carry, and broken markers', () => {
  assert.throws(() => functionCodeBlock('a\r\nb\n', 6), /U\+000d/);
  assert.throws(() => functionCodeBlock('a\u2028b\n', 6), /U\+2028/);
  assert.throws(() => functionCodeBlock(' leading\n', 6), /whitespace/);
  assert.throws(() => functionCodeBlock('\n\n', 6), /empty/);
  assert.throws(() => checkTemplate('Resources: {}\n', code), /not found/);
  assert.throws(() => checkTemplate(MINI + MINI, code), /repeated/);
  assert.throws(() => checkTemplate(MINI.replace(`      ${END}`, `    ${END}`), code), /indented/);
});

test('CLI: --check exits 1 on a stale copy, rewriting fixes it, 2 on unusable input', (t) => {
  const dir = tmp(t);
  const tpl = join(dir, 'template.yaml');
  const fn = join(dir, 'viewer-request.js');
  const resp = join(dir, 'viewer-response.js');
  writeFileSync(tpl, MINI2);
  writeFileSync(fn, 'async function handler(event) {\n  return event.request;\n}\n');
  writeFileSync(resp, 'function handler(event) {\n  return event.response;\n}\n');
  const files = ['--template', tpl, '--function', fn, '--response-function', resp];
  let r = gen('--check', ...files);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /differs from .*viewer-request\.js.*run node edge\/gen-template\.mjs/);
  assert.match(r.stderr, /differs from .*viewer-response\.js/);
  r = gen(...files);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /updated/);
  r = gen('--check', ...files);
  assert.equal(r.status, 0, r.stderr);
  r = gen(...files);
  assert.match(r.stdout, /up to date/);
  assert.equal(parseCfn(readFileSync(tpl, 'utf8')).Resources.Fn2.Properties.FunctionCode, readFileSync(resp, 'utf8'));
  // A template without the viewer-response block is unusable, not silently half-checked.
  writeFileSync(tpl, MINI);
  r = gen('--check', ...files);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /viewer-response\.js' not found/);
  writeFileSync(tpl, 'Resources: {}\n');
  r = gen('--check', ...files);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /marker/);
  assert.equal(gen('--bogus').status, 2);
});

// --- The edge wiring -------------------------------------------------------------------------

const resources = YAML ? parseCfn(templateText).Resources : {};
/** A test of the parsed template: fails with MISSING when the yaml package is absent. */
const wiring = (name, fn) =>
  test(name, () => {
    assert.ok(YAML, MISSING);
    fn();
  });
const distribution = resources.Distribution?.Properties.DistributionConfig;
const arnOfDistribution = {
  'Fn::Sub': 'arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}',
};

wiring('origin group: the derived bucket first, the transformer on 403/404/5xx', () => {
  const [group] = distribution.OriginGroups.Items;
  assert.equal(distribution.OriginGroups.Quantity, 1);
  assert.deepEqual(group.Members.Items.map((m) => m.OriginId), ['derived', 'transform']);
  assert.deepEqual(group.FailoverCriteria.StatusCodes.Items, [403, 404, 500, 502, 503, 504]);
  assert.equal(group.FailoverCriteria.StatusCodes.Quantity, 6);
  const [derived, transform] = distribution.Origins;
  assert.deepEqual(derived.DomainName, { 'Fn::GetAtt': ['DerivedBucket', 'RegionalDomainName'] });
  assert.deepEqual(derived.S3OriginConfig, { OriginAccessIdentity: '' });
  assert.deepEqual(derived.OriginAccessControlId, { 'Fn::GetAtt': ['DerivedBucketOriginAccessControl', 'Id'] });
  assert.deepEqual(transform.DomainName, {
    'Fn::Select': [2, { 'Fn::Split': ['/', { 'Fn::GetAtt': ['TransformFunctionUrl', 'FunctionUrl'] }] }],
  });
  assert.equal(transform.CustomOriginConfig.OriginProtocolPolicy, 'https-only');
  assert.deepEqual(transform.OriginAccessControlId, { 'Fn::GetAtt': ['TransformOriginAccessControl', 'Id'] });
  for (const o of [derived, transform]) {
    assert.deepEqual(o.OriginShield['Fn::If'][0], 'UseOriginShield');
  }
  // What the Select/Split does to a Function URL.
  const url = 'https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/';
  assert.equal(url.split('/')[2], 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws');
  const oac = (id) => resources[id].Properties.OriginAccessControlConfig;
  assert.equal(oac('DerivedBucketOriginAccessControl').OriginAccessControlOriginType, 's3');
  assert.equal(oac('TransformOriginAccessControl').OriginAccessControlOriginType, 'lambda');
  for (const id of ['DerivedBucketOriginAccessControl', 'TransformOriginAccessControl']) {
    assert.equal(oac(id).SigningBehavior, 'always');
    assert.equal(oac(id).SigningProtocol, 'sigv4');
  }
});

wiring('behaviors: GET/HEAD, https, the function, cache and origin request policies', () => {
  const fnAssoc = [
    {
      EventType: 'viewer-request',
      FunctionARN: { 'Fn::GetAtt': ['ViewerRequestFunction', 'FunctionMetadata', 'FunctionARN'] },
    },
    {
      EventType: 'viewer-response',
      FunctionARN: { 'Fn::GetAtt': ['ViewerResponseFunction', 'FunctionMetadata', 'FunctionARN'] },
    },
  ];
  const def = distribution.DefaultCacheBehavior;
  // [0] is the latest alias, [1] the tenant API, [2] the console (their own tests below).
  const short = distribution.CacheBehaviors[3];
  assert.equal(distribution.CacheBehaviors.length, 4);
  for (const b of [def, short]) {
    assert.equal(b.TargetOriginId, 'derived-then-transform');
    assert.equal(b.ViewerProtocolPolicy, 'redirect-to-https');
    assert.deepEqual(b.AllowedMethods, ['GET', 'HEAD']);
    assert.deepEqual(b.FunctionAssociations, fnAssoc);
    assert.deepEqual(b.OriginRequestPolicyId, { Ref: 'ImageOriginRequestPolicy' });
  }
  assert.deepEqual(def.CachePolicyId, { Ref: 'ImageCachePolicy' });
  assert.deepEqual(short.CachePolicyId, { Ref: 'ShortTtlCachePolicy' });
  assert.deepEqual(short.PathPattern, { Ref: 'ShortTtlPathPattern' });
  assert.deepEqual(short.ResponseHeadersPolicyId, { Ref: 'ShortTtlResponseHeadersPolicy' });
  assert.equal(def.ResponseHeadersPolicyId, undefined);

  const cache = (id) => resources[id].Properties.CachePolicyConfig;
  for (const [id, ttls] of [
    ['ImageCachePolicy', [0, 86400, 31536000]],
    ['ShortTtlCachePolicy', [0, 60, 60]],
  ]) {
    const c = cache(id);
    assert.deepEqual([c.MinTTL, c.DefaultTTL, c.MaxTTL], ttls, id);
    const k = c.ParametersInCacheKeyAndForwardedToOrigin;
    assert.deepEqual(k.QueryStringsConfig, { QueryStringBehavior: 'whitelist', QueryStrings: ['w', 'h', 'fmt', 'q'] });
    assert.deepEqual(k.HeadersConfig, { HeaderBehavior: 'none' });
    assert.deepEqual(k.CookiesConfig, { CookieBehavior: 'none' });
    assert.equal(k.EnableAcceptEncodingGzip, false);
    assert.equal(k.EnableAcceptEncodingBrotli, false);
  }
  const orp = resources.ImageOriginRequestPolicy.Properties.OriginRequestPolicyConfig;
  assert.deepEqual(orp.HeadersConfig, { HeaderBehavior: 'whitelist', Headers: ['accept', 'referer', 'x-pixelfront-request'] });
  assert.deepEqual(orp.CookiesConfig, { CookieBehavior: 'none' });
  assert.deepEqual(orp.QueryStringsConfig, { QueryStringBehavior: 'none' });
  const [header] = resources.ShortTtlResponseHeadersPolicy.Properties.ResponseHeadersPolicyConfig.CustomHeadersConfig.Items;
  assert.deepEqual(header, {
    Header: 'Cache-Control',
    Value: 'public, max-age=60, stale-while-revalidate=30, stale-if-error=300',
    Override: true,
  });
});

wiring('distribution settings: error TTLs, cache tags, HTTP/2+3, price class, optional web ACL', () => {
  const ttl = Object.fromEntries(distribution.CustomErrorResponses.map((e) => [e.ErrorCode, e.ErrorCachingMinTTL]));
  assert.deepEqual(ttl, { 400: 0, 403: 0, 404: 10, 500: 60, 502: 60, 503: 60, 504: 60 });
  // No custom error page: the origin's own answer (and its Cache-Control) reaches the viewer.
  for (const e of distribution.CustomErrorResponses) {
    assert.deepEqual(Object.keys(e).sort(), ['ErrorCachingMinTTL', 'ErrorCode'], String(e.ErrorCode));
  }
  assert.deepEqual(distribution.CacheTagConfig, { HeaderName: 'x-amz-meta-cache-tag' });
  assert.equal(distribution.HttpVersion, 'http2and3');
  assert.deepEqual(distribution.PriceClass, { Ref: 'PriceClass' });
  assert.deepEqual(distribution.WebACLId, { 'Fn::If': ['HasWebAcl', { Ref: 'WebAclArn' }, { Ref: 'AWS::NoValue' }] });
  const params = parseCfn(templateText).Parameters;
  assert.equal(params.PriceClass.Default, 'PriceClass_100');
  assert.equal(params.OriginShieldEnabled.Default, 'false');
  assert.equal(params.OriginShieldRegion.Default, 'us-east-1');
  assert.equal(params.ShortTtlPathPattern.Default, '/img/*/ugc/*');
  assert.equal(params.WebAclArn.Default, '');
  assert.equal(params.TransformMemorySize.Default, 1769);
});

wiring('the viewer-response function is cloudfront-js-2.0, published, with no store', () => {
  const p = resources.ViewerResponseFunction.Properties;
  assert.equal(p.AutoPublish, true);
  assert.equal(p.FunctionConfig.Runtime, 'cloudfront-js-2.0');
  assert.equal(p.FunctionConfig.KeyValueStoreAssociations, undefined);
});

wiring('the function is cloudfront-js-2.0, published, with the tenant policy store', () => {
  const p = resources.ViewerRequestFunction.Properties;
  assert.equal(p.AutoPublish, true);
  assert.equal(p.FunctionConfig.Runtime, 'cloudfront-js-2.0');
  assert.deepEqual(p.FunctionConfig.KeyValueStoreAssociations, [
    { KeyValueStoreARN: { 'Fn::GetAtt': ['TenantPolicyStore', 'Arn'] } },
  ]);
});

wiring('the policy store starts empty: no import at creation, no parameter for one', () => {
  // Loaded only by `pixelfront tenant --aws` (the function fails closed until #default is there).
  const t = parseCfn(templateText);
  assert.deepEqual(Object.keys(resources.TenantPolicyStore.Properties).sort(), ['Comment', 'Name']);
  assert.equal(t.Parameters.TenantPolicyImportArn, undefined);
  assert.equal(t.Conditions.HasTenantPolicyImport, undefined);
  assert.doesNotMatch(templateText, /ImportSource|TenantPolicyImport|gen-tenants/);
  assert.deepEqual(t.Outputs.TenantPolicyStoreArn.Value, { 'Fn::GetAtt': ['TenantPolicyStore', 'Arn'] });
});

wiring('the tenant policy table: key tenant, on demand, encrypted, recoverable, kept', () => {
  const table = resources.TenantPolicyTable;
  assert.equal(table.Type, 'AWS::DynamoDB::Table');
  const p = table.Properties;
  assert.deepEqual(p.KeySchema, [{ AttributeName: 'tenant', KeyType: 'HASH' }]);
  assert.deepEqual(p.AttributeDefinitions, [{ AttributeName: 'tenant', AttributeType: 'S' }]);
  assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
  assert.deepEqual(p.SSESpecification, { SSEEnabled: true });
  assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  // Kept by `sam delete` like the manifest table.
  const manifest = resources.ManifestTable;
  assert.equal(manifest.DeletionPolicy, 'Retain');
  assert.equal(table.DeletionPolicy, manifest.DeletionPolicy);
  assert.equal(table.UpdateReplacePolicy, manifest.UpdateReplacePolicy);
  const t = parseCfn(templateText);
  assert.deepEqual(t.Outputs.TenantPolicyTableName.Value, { Ref: 'TenantPolicyTable' });
});

wiring('only the transformer and the tenant API read the tenant policy table, and only by GetItem', () => {
  // Every resource but the table itself, its output, the transformer's and the tenant API's
  // roles and functions (the API signs a signing tenant's variant URLs), and the operators'
  // managed policy (what `pixelfront tenant --aws` calls, attached to people).
  const mentions = (x) => JSON.stringify(x).includes('TenantPolicyTable');
  const users = Object.entries(resources).filter(([id, r]) => id !== 'TenantPolicyTable' && mentions(r));
  assert.deepEqual(users.map(([id]) => id).sort(),
    ['ApiFunction', 'ApiFunctionRole', 'TenantPolicyOperatorPolicy', 'TransformFunction', 'TransformFunctionRole']);
  const operator = resources.TenantPolicyOperatorPolicy;
  assert.equal(operator.Type, 'AWS::IAM::ManagedPolicy');
  assert.deepEqual(operator.Properties.Roles ?? operator.Properties.Users ?? operator.Properties.Groups, undefined,
    'attached to no role of the stack: no function can use it');
  const onPolicies = operator.Properties.PolicyDocument.Statement.filter((st) => st.Sid !== 'ApiKeys');
  const actions = onPolicies.flatMap((st) => st.Action).sort();
  assert.deepEqual(actions, ['cloudfront-keyvaluestore:DeleteKey', 'cloudfront-keyvaluestore:DescribeKeyValueStore',
    'cloudfront-keyvaluestore:ListKeys', 'cloudfront-keyvaluestore:PutKey',
    'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan']);
  const apiKeys = operator.Properties.PolicyDocument.Statement.find((st) => st.Sid === 'ApiKeys');
  assert.deepEqual(apiKeys.Resource, { 'Fn::GetAtt': ['ApiKeyTable', 'Arn'] });
  assert.deepEqual([...apiKeys.Action].sort(), ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Scan']);
  // No other role, role policy or managed policy (nor a SAM policy template) names it.
  const roles = Object.entries(resources).filter(([, r]) =>
    ['AWS::IAM::Role', 'AWS::IAM::RolePolicy', 'AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].includes(r.Type) ||
    r.Properties?.Policies !== undefined,
  );
  assert.ok(roles.length >= 8, `${roles.length} roles`);
  for (const [id, r] of roles) {
    if (!['TransformFunctionRole', 'ApiFunctionRole', 'TenantPolicyOperatorPolicy'].includes(id)) {
      assert.equal(mentions(r), false, `${id} mentions TenantPolicyTable`);
    }
  }
  for (const role of ['TransformFunctionRole', 'ApiFunctionRole']) {
    const statements = resources[role].Properties.Policies[0].PolicyDocument.Statement;
    const onTable = statements.filter(mentions);
    assert.deepEqual(onTable, [
      {
        Sid: 'TenantPolicies',
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: { 'Fn::GetAtt': ['TenantPolicyTable', 'Arn'] },
      },
    ], role);
  }
  const env = resources.TransformFunction.Properties.Environment.Variables;
  assert.deepEqual(env.TENANT_POLICY_TABLE, { Ref: 'TenantPolicyTable' });
  // Policies no longer live in the manifest table: nothing in the template says so.
  assert.doesNotMatch(templateText, /#tenant\//);
  assert.doesNotMatch(templateText, /manifest table \([^)]*polic/i);
});

wiring('the tenant API function has exactly the calls it makes', () => {
  const statements = resources.ApiFunctionRole.Properties.Policies[0].PolicyDocument.Statement;
  const calls = Object.fromEntries(statements.map((st) => [st.Sid, [st.Action].flat().sort()]));
  assert.deepEqual(calls, {
    Logs: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    ApiKeys: ['dynamodb:GetItem'],
    Manifest: ['dynamodb:GetItem', 'dynamodb:Scan'],
    TenantPolicies: ['dynamodb:GetItem'],
    Uploads: ['s3:PutObject'],
    StartTakedowns: ['states:StartExecution'],
    DescribeTakedowns: ['states:DescribeExecution'],
    Audit: ['dynamodb:GetItem', 'dynamodb:Query'],
    DeliveryBaseUrl: ['ssm:GetParameter'],
  });
  assert.ok(statements.every((st) => st.Effect === 'Allow' && !JSON.stringify(st.Resource).includes('"*"')));
  const env = resources.ApiFunction.Properties.Environment.Variables;
  assert.deepEqual(env.API_KEY_TABLE, { Ref: 'ApiKeyTable' });
  assert.deepEqual(resources.ApiFunction.Properties.Events.TenantApi.Properties,
    { Path: '/api/v1/tenants/{proxy+}', Method: 'ANY' });
});

wiring('the distribution sends the latest alias to the tenant API, without the viewer-request function', () => {
  const config = resources.Distribution.Properties.DistributionConfig;
  const api = config.Origins.find((o) => o.Id === 'api');
  assert.deepEqual(api.DomainName, { 'Fn::Sub': '${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}' });
  const [first] = config.CacheBehaviors;
  assert.equal(first.PathPattern, '/img/*/latest/*', 'first: a latest path under the short-TTL pattern is still the alias');
  assert.equal(first.TargetOriginId, 'api');
  assert.equal(first.FunctionAssociations, undefined, 'the function would refuse latest as a version');
  assert.deepEqual(first.AllowedMethods, ['GET', 'HEAD']);
  const policy = resources.LatestCachePolicy.Properties.CachePolicyConfig;
  assert.equal(policy.MaxTTL, 60);
  assert.equal(policy.ParametersInCacheKeyAndForwardedToOrigin.QueryStringsConfig.QueryStringBehavior, 'all');
  // The api function reads the distribution's address from a parameter: naming the
  // distribution (or the takedown workflow, whose function names it) would be a cycle.
  const env = resources.ApiFunction.Properties.Environment.Variables;
  assert.equal(JSON.stringify(env).includes('Distribution'), false);
  assert.equal(JSON.stringify(env).includes('"Ref":"TakedownStateMachine"'), false);
  assert.deepEqual(resources.DeliveryBaseUrlParameter.Properties.Value, { 'Fn::Sub': 'https://${Distribution.DomainName}' });
});

wiring('the web console: /api/* uncached to the tenant API, /console/* from a private bucket, uploads cross-origin', () => {
  const config = resources.Distribution.Properties.DistributionConfig;
  const [, api, console] = config.CacheBehaviors;
  assert.equal(api.PathPattern, '/api/*');
  assert.equal(api.TargetOriginId, 'api');
  assert.equal(api.ViewerProtocolPolicy, 'https-only', 'keys never travel over http');
  assert.equal(api.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', 'CachingDisabled: Authorization may be forwarded');
  assert.equal(api.OriginRequestPolicyId, 'b689b0a8-53d0-40ab-baf2-68738e2966ac');
  for (const m of ['GET', 'POST', 'PATCH', 'DELETE']) assert.ok(api.AllowedMethods.includes(m), m);
  assert.equal(api.FunctionAssociations, undefined);
  assert.equal(console.PathPattern, '/console/*');
  assert.equal(console.TargetOriginId, 'console');
  assert.deepEqual(console.AllowedMethods, ['GET', 'HEAD']);
  assert.deepEqual(console.ResponseHeadersPolicyId, { Ref: 'ConsoleResponseHeadersPolicy' });
  const origin = config.Origins.find((o) => o.Id === 'console');
  assert.deepEqual(origin.DomainName, { 'Fn::GetAtt': ['ConsoleBucket', 'RegionalDomainName'] });
  assert.deepEqual(origin.S3OriginConfig, { OriginAccessIdentity: '' });
  assert.ok(origin.OriginAccessControlId);
  const bucket = resources.ConsoleBucket.Properties;
  assert.deepEqual(Object.values(bucket.PublicAccessBlockConfiguration), [true, true, true, true]);
  const read = resources.ConsoleBucketPolicy.Properties.PolicyDocument.Statement
    .find((st) => st.Sid === 'AllowDistributionRead');
  assert.deepEqual(read.Principal, { Service: 'cloudfront.amazonaws.com' });
  assert.deepEqual(read.Action, 's3:GetObject');
  assert.deepEqual(read.Condition.StringEquals['AWS:SourceArn'], arnOfDistribution);
  const csp = resources.ConsoleResponseHeadersPolicy.Properties.ResponseHeadersPolicyConfig
    .SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy;
  const local = readFileSync(new URL('../../local/src/console.rs', import.meta.url), 'utf8');
  const localCsp = local.match(/const CSP: &str = "([^;]*(?:;[^"]*)*)";/s)[1].replace(/\\\n\s*/g, '');
  assert.equal(csp, localCsp, 'one policy on both stacks');
  const [cors] = resources.OriginalsBucket.Properties.CorsConfiguration.CorsRules;
  assert.deepEqual(cors.AllowedMethods, ['PUT'], 'the presigned upload only');
  assert.deepEqual(resources.ApiFunction.Properties.Events.WhoAmI.Properties,
    { Path: '/api/v1/whoami', Method: 'GET' });
});

wiring('the tenant API\'s custom domain is optional and latency-routed per region', () => {
  for (const id of ['ApiDomain', 'ApiDomainMapping', 'ApiLatencyRecord']) {
    assert.equal(resources[id].Condition, 'HasApiDomain', id);
  }
  assert.deepEqual(resources.ApiDomainMapping.Properties.ApiId, { Ref: 'ServerlessHttpApi' });
  const record = resources.ApiLatencyRecord.Properties;
  assert.equal(record.Type, 'A');
  assert.deepEqual(record.Region, { Ref: 'AWS::Region' });
  assert.deepEqual(record.SetIdentifier, { Ref: 'AWS::Region' }, 'one record per region under one name');
  assert.deepEqual(record.AliasTarget.DNSName, { 'Fn::GetAtt': ['ApiDomain', 'RegionalDomainName'] });
  assert.equal(resources.ApiDomain.Properties.DomainNameConfigurations[0].EndpointType, 'REGIONAL');
});

wiring('only this distribution reaches the origins (bucket policy, Lambda permissions)', () => {
  const statements = resources.DerivedBucketPolicy.Properties.PolicyDocument.Statement;
  assert.deepEqual(statements.map((s) => s.Sid), ['DenyInsecureTransport', 'AllowDistributionRead']);
  const read = statements[1];
  assert.deepEqual(read.Principal, { Service: 'cloudfront.amazonaws.com' });
  assert.equal(read.Action, 's3:GetObject');
  assert.deepEqual(read.Condition, { StringEquals: { 'AWS:SourceArn': arnOfDistribution } });

  const perms = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Permission');
  assert.deepEqual(perms.map((p) => p.Properties.Action).sort(), ['lambda:InvokeFunction', 'lambda:InvokeFunctionUrl']);
  for (const { Properties: p } of perms) {
    assert.deepEqual(p.FunctionName, { Ref: 'TransformFunction' });
    assert.equal(p.Principal, 'cloudfront.amazonaws.com');
    assert.deepEqual(p.SourceArn, arnOfDistribution);
  }
  const invoke = perms.find((p) => p.Properties.Action === 'lambda:InvokeFunction').Properties;
  assert.equal(invoke.InvokedViaFunctionUrl, true);
  const fn = resources.TransformFunction.Properties;
  assert.deepEqual(fn.FunctionUrlConfig, { AuthType: 'AWS_IAM', InvokeMode: 'BUFFERED' });
});

wiring('the transformer: build, environment and a least-privilege role', () => {
  const fn = resources.TransformFunction;
  assert.deepEqual(fn.Metadata, { BuildMethod: 'rust-cargolambda', BuildProperties: { Binary: 'transform' } });
  assert.equal(fn.Properties.Runtime, 'provided.al2023');
  assert.equal(fn.Properties.Timeout, 30);
  assert.deepEqual(Object.keys(fn.Properties.Environment.Variables).sort(), [
    'DERIVED_BUCKET',
    'MANIFEST_TABLE',
    'ORIGINALS_BUCKET',
    'REPLICA_BUCKET',
    'REPLICA_REGION',
    'RUST_LOG',
    'TENANT_POLICY_TABLE',
    'TENANT_READ_ROLE_ARN',
  ]);
  const statements = resources.TransformFunctionRole.Properties.Policies[0].PolicyDocument.Statement;
  const actions = Object.fromEntries(statements.map((s) => [s.Sid, [s.Action].flat().sort()]));
  assert.deepEqual(actions, {
    Logs: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    // A missing key answers 404, not 403 (tests/integration/iam.py emulates the difference).
    ListDerivatives: ['s3:ListBucket'],
    Derivatives: ['s3:DeleteObject', 's3:GetObject', 's3:PutObject', 's3:PutObjectTagging'],
    Manifest: ['dynamodb:GetItem'],
    TenantPolicies: ['dynamodb:GetItem'],
  });
  const resource = Object.fromEntries(statements.map((s) => [s.Sid, s.Resource]));
  assert.deepEqual(resource.Manifest, { 'Fn::GetAtt': ['ManifestTable', 'Arn'] });
  assert.deepEqual(resource.TenantPolicies, { 'Fn::GetAtt': ['TenantPolicyTable', 'Arn'] });
  // Originals only through the tenant-read role, assumed per tenant (shared/src/store/scoped.rs).
  const reader = resources.TenantOriginalsReadRole.Properties;
  assert.deepEqual(reader.AssumeRolePolicyDocument.Statement[0].Principal, {
    AWS: { 'Fn::GetAtt': ['TransformFunctionRole', 'Arn'] },
  });
  const assume = resources.TransformAssumeTenantReadPolicy.Properties;
  assert.deepEqual(assume.RoleName, { Ref: 'TransformFunctionRole' });
  assert.deepEqual(assume.PolicyDocument.Statement, [
    { Effect: 'Allow', Action: 'sts:AssumeRole', Resource: { 'Fn::GetAtt': ['TenantOriginalsReadRole', 'Arn'] } },
  ]);
});

// Admission control on AWS (docs/limits.md): the transformer's reserved concurrency, and the
// lifecycle rule that expires derivatives rendered on demand (tagged by shared/src/store/s3.rs).
const admissionTemplate = YAML ? parseCfn(templateText) : {};
wiring('the transformer has a reserved-concurrency parameter, -1 meaning none', () => {
  const param = admissionTemplate.Parameters.TransformReservedConcurrency;
  assert.equal(param.Type, 'Number');
  assert.equal(param.MinValue, -1);
  assert.ok(param.Default >= 1);
  assert.deepEqual(admissionTemplate.Conditions.HasTransformReservation, {
    'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'TransformReservedConcurrency' }, -1] }],
  });
  assert.deepEqual(resources.TransformFunction.Properties.ReservedConcurrentExecutions, {
    'Fn::If': ['HasTransformReservation', { Ref: 'TransformReservedConcurrency' }, { Ref: 'AWS::NoValue' }],
  });
  assert.equal(resources.PrecomputeFunction.Properties.ReservedConcurrentExecutions, undefined);
});

wiring('only on-demand derivatives expire, after a parameter of days', () => {
  const param = admissionTemplate.Parameters.OnDemandExpirationDays;
  assert.equal(param.Type, 'Number');
  assert.equal(param.MinValue, 1);
  const rules = resources.DerivedBucket.Properties.LifecycleConfiguration.Rules;
  const expiring = rules.filter((r) => r.ExpirationInDays !== undefined || r.Expiration !== undefined);
  assert.equal(expiring.length, 1, 'one expiring rule');
  const [rule] = expiring;
  assert.equal(rule.Status, 'Enabled');
  assert.deepEqual(rule.ExpirationInDays, { Ref: 'OnDemandExpirationDays' });
  // The tag the S3 adapter writes (shared/src/store/mod.rs ON_DEMAND_TAG_KEY/VALUE).
  assert.deepEqual(rule.TagFilters, [{ Key: 'pixelfront-on-demand', Value: '1' }]);
  assert.equal(rule.Prefix, undefined);
  const mod = readFileSync(new URL('../../shared/src/store/mod.rs', import.meta.url), 'utf8');
  assert.match(mod, /ON_DEMAND_TAG_KEY: &str = "pixelfront-on-demand";/);
  assert.match(mod, /ON_DEMAND_TAG_VALUE: &str = "1";/);
  const derivatives = resources.TransformFunctionRole.Properties.Policies[0].PolicyDocument.Statement.find(
    (s) => s.Sid === 'Derivatives',
  );
  assert.ok([derivatives.Action].flat().includes('s3:PutObjectTagging'), 'PutObject with tagging');
});
