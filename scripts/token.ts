// npm run token -- --tenant T [--roles r1,r2] [--scopes s1,s2] [--ttl 12h]: prints a development JWT.
import { parseArgs } from 'node:util';
import { TENANT_PATTERN } from '../lib/auth.ts';
import { signDevToken } from '../lib/devKeys.ts';

const { values } = parseArgs({
  options: {
    tenant: { type: 'string' },
    roles: { type: 'string', default: 'viewer' },
    scopes: { type: 'string', default: '' },
    ttl: { type: 'string', default: '12h' },
    subject: { type: 'string' },
  },
});
const list = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

if (!values.tenant || !TENANT_PATTERN.test(values.tenant)) {
  process.stderr.write('usage: npm run token -- --tenant T [--roles r1,r2] [--scopes s1,s2] [--ttl 12h]\n');
  process.exit(2);
}
const token = await signDevToken(process.env['DATA_DIR'] ?? '.data', {
  tenant: values.tenant,
  roles: list(values.roles),
  scopes: list(values.scopes),
  expiresIn: values.ttl,
  ...(values.subject ? { subject: values.subject } : {}),
});
process.stdout.write(`${token}\n`);
