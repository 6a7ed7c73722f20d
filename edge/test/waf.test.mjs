//! The tenants file as gen-waf.mjs reads it (tenant ids and Referer hosts, with clear
//! errors), waf.yaml (`gen-waf.mjs --check`), and the WAF Referer regexes, which must accept
//! exactly the Referers that the CloudFront Function's refererOk accepts (a table of cases, a
//! seeded random sweep, and whole requests through the real function file).

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFunction, runViewerRequest } from '../harness.mjs';
import {
  DEFAULT_OUT,
  DEFAULT_TENANTS,
  REFERER_PREFIX,
  TenantsError,
  estimateWcu,
  loadTenants,
  parseTenants,
  patternSetId,
  refererRegex,
  wafTemplate,
} from '../gen-waf.mjs';

const GEN_WAF = fileURLToPath(new URL('../gen-waf.mjs', import.meta.url));
const run = (script, ...args) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });

// The `yaml` package: a devDependency of the root package.json (`npm ci`, run by .ci/setup-test).
// Without it the test that parses waf.yaml fails (it never skips).
const YAML = (await import('yaml').catch(() => null))?.default;
const MISSING = 'the yaml package is missing: run `npm ci` at the repo root (.ci/setup-test does)';
const NAMES = ['Ref', 'Sub', 'GetAtt', 'Equals'];
const longName = (n) => (n === 'Ref' ? n : `Fn::${n}`);
const customTags = NAMES.flatMap((n) => [
  { tag: `!${n}`, resolve: (s) => ({ [longName(n)]: n === 'GetAtt' ? s.split('.') : s }) },
  { tag: `!${n}`, collection: 'seq', resolve: (seq) => ({ [longName(n)]: seq.toJSON() }) },
]);

function tmp(t) {
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-gen-waf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const example = loadTenants(DEFAULT_TENANTS);
const exampleJson = JSON.parse(readFileSync(DEFAULT_TENANTS, 'utf8'));
const DEMO = '{"sign":false,"keys":{},"referers":[]}';

// --- The tenants file ------------------------------------------------------------------------

test('the example: #default and demo list no Referer host, acme two', () => {
  assert.deepEqual([...example], [
    ['#default', { referers: [] }],
    ['acme', { referers: ['shop.acme.example', '*.acme.example'] }],
    ['demo', { referers: [] }],
  ]);
});

test("the example's policies, as store values, work at the edge (validPolicy, signing, defaults)", async () => {
  const kvs = new Map(Object.entries(exampleJson).map(([t, p]) => [t, JSON.stringify(p)]));
  const fn = loadFunction(undefined, { kvs });
  for (const p of Object.values(exampleJson)) assert.equal(fn.validPolicy(p), true);
  const acme = await runViewerRequest({ uri: '/img/acme/v1/a.jpg', kvs });
  assert.equal(acme.body?.data, 'signature required');
  const demo = await runViewerRequest({ uri: '/img/demo/v1/a.jpg', referer: 'https://anywhere.example/', kvs });
  assert.equal(demo.uri, '/demo/v1/a.jpg/q80.jpeg');
});

test('validation: every problem of the tenant ids and Referer hosts, named by tenant', () => {
  const cases = [
    ['not json', /not JSON/],
    ['[]', /expected a JSON object/],
    ['{"Acme": {}}', /tenant 'Acme': bad tenant id/],
    ['{"-acme": {}}', /bad tenant id/],
    ['{"#other": {}}', /tenant '#other': bad tenant id/],
    [`{"${'a'.repeat(64)}": {}}`, /bad tenant id/],
    ['{"acme": []}', /tenant 'acme': the policy must be an object/],
    ['{"acme": {"referers": "shop.example"}}', /"referers" must be an array/],
    ['{"acme": {"referers": ["https://shop.example/"]}}', /bad referer "https:\/\/shop\.example\/"/],
    ['{"acme": {"referers": ["shop.example:8080"]}}', /bad referer/],
    ['{"acme": {"referers": ["*"]}}', /bad referer/],
    ['{"acme": {"referers": [""]}}', /bad referer/],
    ['{"acme": {"referers": [7]}}', /bad referer 7/],
    [`{"acme": {"referers": ["${'a'.repeat(254)}"]}}`, /bad referer/],
    ['{"acme": {"referers": ["a.example", "A.example"]}}', /referer 'A.example' listed twice/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseTenants(text, 'file.json'), (e) => e instanceof TenantsError && re.test(e.message), text);
  }
  try {
    parseTenants('{"x_y": {"referers": ["a b", "ok.example", "OK.example"]}}', 'file.json');
    assert.fail('accepted');
  } catch (e) {
    assert.equal(e.errors.length, 3, e.message);
    assert.match(e.message, /^file\.json: 3 problems:\n/);
  }
  // Absent referers are none; any host case is accepted; the other fields are not read here.
  assert.deepEqual(parseTenants('{"a": {}}').get('a'), { referers: [] });
  assert.deepEqual(parseTenants('{"a": {"referers": ["Shop.Example.COM"]}}').get('a').referers, ['Shop.Example.COM']);
  assert.deepEqual(parseTenants('{"a": {"sign": true, "on_demand": "catalogue"}}').get('a'), { referers: [] });
});

test('#default: accepted, given no WAF rule, and a warning when it lists referers', () => {
  const none = [];
  const plain = wafTemplate(parseTenants(JSON.stringify({ ...exampleJson, '#default': { sign: true } })), none);
  assert.equal(plain, wafTemplate(example));
  assert.deepEqual(none, []);
  const warnings = [];
  const refs = parseTenants(JSON.stringify({ ...exampleJson, '#default': { referers: ['x.example'] } }));
  assert.equal(wafTemplate(refs, warnings), wafTemplate(example));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /'#default' lists referers: no WAF rule/);
});

// --- waf.yaml --------------------------------------------------------------------------------

test('gen-waf --check passes on the committed waf.yaml', () => {
  const r = run(GEN_WAF, '--check');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(DEFAULT_OUT, 'utf8'), wafTemplate(example));
});

test('waf.yaml: rate rule, one hotlink rule and pattern set for acme, none for demo', () => {
  assert.ok(YAML, MISSING);
  const t = YAML.parse(readFileSync(DEFAULT_OUT, 'utf8'), { customTags });
  const acl = t.Resources.WebAcl.Properties;
  assert.equal(acl.Scope, 'CLOUDFRONT');
  assert.deepEqual(acl.DefaultAction, { Allow: {} });
  assert.deepEqual(Object.keys(t.Resources).sort(), ['RefererHostsAcme', 'WebAcl']);
  assert.deepEqual(t.Resources.RefererHostsAcme.Properties.RegularExpressionList, [
    refererRegex('shop.acme.example'),
    refererRegex('*.acme.example'),
  ]);
  assert.equal(t.Resources.RefererHostsAcme.Properties.Scope, 'CLOUDFRONT');
  assert.deepEqual(acl.Rules.map((r) => [r.Name, r.Priority]), [['rate-per-ip', 0], ['hotlink-acme', 1]]);
  const [rate, hotlink] = acl.Rules;
  assert.deepEqual(rate.Statement.RateBasedStatement, { Limit: { Ref: 'RateLimitPer5Min' }, AggregateKeyType: 'IP', EvaluationWindowSec: 300 });
  assert.equal(t.Parameters.RateLimitPer5Min.Default, 2000);
  assert.deepEqual(hotlink.Action.Block.CustomResponse, { ResponseCode: 403, CustomResponseBodyKey: 'hotlink-refused' });
  assert.deepEqual(acl.CustomResponseBodies['hotlink-refused'], { ContentType: 'TEXT_PLAIN', Content: 'hotlink refused' });
  const [path, present, not] = hotlink.Statement.AndStatement.Statements;
  assert.equal(path.ByteMatchStatement.PositionalConstraint, 'STARTS_WITH');
  assert.equal(path.ByteMatchStatement.SearchString, '/img/acme/');
  assert.deepEqual(path.ByteMatchStatement.FieldToMatch, { UriPath: {} });
  assert.deepEqual(present.SizeConstraintStatement.FieldToMatch, { SingleHeader: { Name: 'referer' } });
  assert.deepEqual([present.SizeConstraintStatement.ComparisonOperator, present.SizeConstraintStatement.Size], ['GE', 0]);
  const set = not.NotStatement.Statement.RegexPatternSetReferenceStatement;
  assert.deepEqual(set.Arn, { 'Fn::GetAtt': ['RefererHostsAcme', 'Arn'] });
  assert.deepEqual(set.TextTransformations, [{ Priority: 0, Type: 'LOWERCASE' }]);
  assert.deepEqual(t.Outputs.WebAclArn.Value, { 'Fn::GetAtt': ['WebAcl', 'Arn'] });
  assert.deepEqual(t.Rules.CloudFrontScopeInUsEast1.Assertions[0].Assert, { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] });
});

test('gen-waf CLI: --check exits 1 when stale, 1 on an invalid tenants file, 2 when unreadable', (t) => {
  const dir = tmp(t);
  const out = join(dir, 'waf.yaml');
  const tenants = join(dir, 'tenants.json');
  writeFileSync(tenants, JSON.stringify({ shop: { referers: ['Shop.Example'] } }));
  let r = run(GEN_WAF, '--tenants', tenants, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /written/);
  assert.match(readFileSync(out, 'utf8'), /hotlink-shop/);
  assert.ok(readFileSync(out, 'utf8').includes(refererRegex('shop.example')), 'hosts are lowercased');
  assert.equal(run(GEN_WAF, '--check', '--tenants', tenants, '--out', out).status, 0);
  assert.match(run(GEN_WAF, '--tenants', tenants, '--out', out).stdout, /up to date/);
  // The committed waf.yaml is not what this tenants file gives.
  r = run(GEN_WAF, '--check', '--tenants', tenants);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /differs/);
  writeFileSync(out, readFileSync(out, 'utf8').replace('Default: 2000', 'Default: 3000'));
  assert.equal(run(GEN_WAF, '--check', '--tenants', tenants, '--out', out).status, 1);
  writeFileSync(tenants, JSON.stringify({ shop: { referers: ['http://shop.example'] } }));
  r = run(GEN_WAF, '--tenants', tenants, '--out', out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad referer/);
  assert.equal(run(GEN_WAF, '--check', '--out', join(dir, 'missing.yaml')).status, 2);
  assert.equal(run(GEN_WAF, '--tenants', join(dir, 'missing.json'), '--out', out).status, 2);
  assert.equal(run(GEN_WAF, '--bogus').status, 2);
});

test('WAF quotas: 10 hosts per tenant, 200-character regexes, 50 pattern sets; warnings', () => {
  const tenants = (obj) => parseTenants(JSON.stringify(obj));
  const hosts = (n) => [...Array(n)].map((_, i) => `h${i}.example`);
  assert.throws(() => wafTemplate(tenants({ a: { referers: hosts(11) } })), /11 referers, .* at most 10/);
  assert.doesNotThrow(() => wafTemplate(tenants({ a: { referers: hosts(10) } })));
  const long = `${'x'.repeat(61)}.${'y'.repeat(60)}.example`;
  assert.equal(refererRegex(long.slice(1)).length, 200);
  assert.doesNotThrow(() => wafTemplate(tenants({ a: { referers: [long.slice(1)] } })));
  assert.throws(() => wafTemplate(tenants({ a: { referers: [long] } })), /-character WAF regex \(limit 200\)/);
  const many = (n) => Object.fromEntries([...Array(n)].map((_, i) => [`t${i}`, { referers: ['a.example'] }]));
  assert.throws(() => wafTemplate(tenants(many(51))), /51 tenants with referers/);
  const warnings = [];
  wafTemplate(tenants(many(40)), warnings);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0], /default quota of 10/);
  assert.match(warnings[1], /about 1522 WCUs/);
  assert.equal(estimateWcu(40), 1522);
  const none = [];
  wafTemplate(example, none);
  assert.deepEqual(none, []);
});

test('pattern set logical ids are distinct for distinct tenants, whatever the letter case', () => {
  const ids = new Map();
  const alphabet = ['a', 'z', '0', '-'];
  const walk = (s) => {
    if (/^[a-z0-9][a-z0-9-]*$/.test(s)) {
      const id = patternSetId(s);
      assert.match(id, /^[A-Za-z0-9]+$/);
      assert.equal(ids.get(id.toLowerCase()), undefined, `${s} and ${ids.get(id.toLowerCase())}`);
      ids.set(id.toLowerCase(), s);
    }
    if (s.length < 5) for (const c of alphabet) walk(s + c);
  };
  walk('');
  assert.ok(ids.size > 300);
  assert.equal(patternSetId('acme'), 'RefererHostsAcme');
});

// --- The Referer regexes against refererOk ---------------------------------------------------

const fn = loadFunction();
const REFERERS = ['shop.acme.example', '*.acme.example'];
// WAF's LOWERCASE transformation (A-Z to a-z) before the match.
const lowercase = (s) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
const wafAccepts = (referer, entries) =>
  entries.map(refererRegex).some((re) => new RegExp(re).test(lowercase(referer)));

test('regex syntax that AWS WAF takes: no capturing groups or lookarounds, at most 200 characters', () => {
  for (const entry of [...REFERERS, 'a.example', '*.b-c.example', 'localhost', 'x_y.example']) {
    const re = refererRegex(entry);
    assert.doesNotMatch(re, /\((?!\?:)/, `capturing group in ${re}`);
    assert.doesNotMatch(re, /\(\?[=!<]/, `lookaround in ${re}`);
    assert.ok(re.length <= 200, `${re.length} characters`);
    assert.ok(re.startsWith(REFERER_PREFIX));
    new RegExp(re);
  }
  assert.equal(refererRegex('Shop.ACME.example'), refererRegex('shop.acme.example'));
});

test('each regex accepts and refuses the same Referers as refererOk (table)', () => {
  const cases = [
    ['https://shop.acme.example/page', true],
    ['https://shop.acme.example', true],
    ['https://SHOP.Acme.Example/page', true],
    ['HTTPS://shop.acme.example/', true],
    ['http://shop.acme.example:8080/x', true],
    ['https://shop.acme.example:/x', true],
    ['https://shop.acme.example:abc', true],
    ['https://shop.acme.example?x=1', true],
    ['https://shop.acme.example#top', true],
    ['https://cdn.acme.example/', true],
    ['https://a.b.acme.example/x', true],
    ['https://..acme.example/', true],
    ['android-app://shop.acme.example/', true],
    ['://shop.acme.example', true],
    ['a:b://shop.acme.example/', true],
    ['a/b://shop.acme.example', true],
    ['x:/://shop.acme.example', true],
    ['https:://shop.acme.example', true],
    ['https://acme.example/', false],
    ['https://.acme.example/', false],
    ['https://evil.example/?from=https://shop.acme.example/', false],
    ['https://evil.example/https://cdn.acme.example/', false],
    ['https://evil.example/shop.acme.example', false],
    ['https://shop.acme.example.evil.example/', false],
    ['https://evilacme.example/', false],
    ['https://evil-acme.example/', false],
    ['https://user@shop.acme.example/', true], // the host is 'user@shop.acme.example'
    ['https://user@shop.acme.example.evil/', false],
    ['https://shop.acme.example@evil.example/', false],
    ['https:///shop.acme.example', false],
    ['https://shop.acme.example./', false],
    ['https://shop.acme.example\t/', false],
    ['https://ѕhop.acme.example/', true], // Cyrillic ѕ: still a subdomain for *.acme.example
    ['https://shop.acme.exаmple/', false], // Cyrillic а
    ['shop.acme.example', false],
    ['//shop.acme.example/', false],
    ['https:/shop.acme.example', false],
    ['', false],
  ];
  for (const [referer, ok] of cases) {
    assert.equal(fn.refererOk(referer, REFERERS), ok, `refererOk(${JSON.stringify(referer)})`);
    assert.equal(wafAccepts(referer, REFERERS), ok, `WAF(${JSON.stringify(referer)})`);
  }
  // Each entry on its own as well.
  for (const entry of REFERERS) {
    for (const [referer] of cases) {
      assert.equal(wafAccepts(referer, [entry]), fn.refererOk(referer, [entry]), `${entry}: ${referer}`);
    }
  }
});

test('each regex agrees with refererOk on a seeded random sweep', () => {
  // mulberry32
  let seed = 0x5eed1e55;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pieces = [
    'https://', 'http://', '://', ':', '/', '//', ':/', '?', '#', '.', '@', '-', ' ', 'x', 'A',
    'shop', 'SHOP', 'acme', '.acme.example', 'acme.example', 'shop.acme.example', 'Shop.Acme.Example',
    'example', ':8080', 'evil.example', '.', '\t', 'é',
  ];
  const hosts = ['shop.acme.example', 'Cdn.Acme.Example', 'acme.example', 'example', 'a.b', 'x.example', '.example', 'a@b.example'];
  const entrySets = [REFERERS, ['shop.acme.example'], ['*.acme.example'], ['example'], ['*.example', 'a.b']];
  let accepted = 0;
  for (let i = 0; i < 20000; i++) {
    const some = (max) => {
      let s = '';
      for (let j = Math.floor(random() * (max + 1)); j > 0; j--) s += pieces[Math.floor(random() * pieces.length)];
      return s;
    };
    const pick = (xs) => xs[Math.floor(random() * xs.length)];
    // Half free-form, half shaped like a URL around a host that may be allowed.
    const referer =
      random() < 0.5
        ? some(7) || 'x'
        : some(2) + pick(['://', 'https://', 'HTTP://']) + pick(hosts) + pick(['', '/', ':', '?', '#']) + some(2);
    const entries = entrySets[i % entrySets.length];
    const ok = fn.refererOk(referer, entries);
    accepted += ok ? 1 : 0;
    assert.equal(wafAccepts(referer, entries), ok, `${JSON.stringify(entries)}: ${JSON.stringify(referer)}`);
  }
  assert.ok(accepted > 2000, `only ${accepted} accepted cases: the sweep is too one-sided`);
});

test('whole requests: the WAF rule blocks exactly what the function refuses as a hotlink', async () => {
  // acme without signing, so that only the Referer decides.
  const kvs = new Map([
    ['acme', JSON.stringify({ referers: REFERERS })],
    ['demo', DEMO],
  ]);
  const wafRules = new Map(
    [...example].filter(([, p]) => p.referers.length).map(([t, p]) => [t, p.referers]),
  );
  const wafBlocks = (uri, referer) =>
    [...wafRules].some(
      ([tenant, entries]) => uri.startsWith(`/img/${tenant}/`) && referer !== undefined && !wafAccepts(referer, entries),
    );
  for (const uri of ['/img/acme/v1/a.jpg', '/img/demo/v1/a.jpg']) {
    for (const referer of [
      undefined,
      '',
      'https://shop.acme.example/',
      'https://cdn.acme.example/p',
      'https://acme.example/',
      'https://evil.example/?https://shop.acme.example/',
      'android-app://shop.acme.example/',
      'https://EVIL.example/',
    ]) {
      const out = await runViewerRequest({ uri, referer, kvs });
      const refused = out.statusCode === 403 && out.body.data === 'hotlink refused';
      assert.equal(wafBlocks(uri, referer), refused, `${uri} Referer ${JSON.stringify(referer)}`);
      if (!refused) assert.equal(out.statusCode, undefined, JSON.stringify(out));
    }
  }
});
