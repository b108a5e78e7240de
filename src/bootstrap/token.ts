import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../adapters/jwks/dev-issuer.ts';

/**
 * `npm run token -- --user <id> [--role <identifier>]... [--ttl <seconds>]`
 *
 * Prints a JWT from the embedded dev issuer, alone on stdout so that it can be
 * captured with `$(npm run -s token -- --user u1)`. The key lives in `.data/`
 * under the working directory, the same place the server keeps it when it
 * runs without configuration, so the server accepts what this prints.
 */

const USAGE = 'usage: npm run token -- --user <id> [--role <identifier>]... [--ttl <seconds>] [--email <e>] [--name <n>]';

interface TokenCommandArgs {
  userId: string;
  roles: string[];
  expiresInSec: number;
  email?: string;
  name?: string;
}

/** Returns the parsed arguments, or the one line to print when they cannot be used. */
function parseTokenArgs(argv: string[]): TokenCommandArgs | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        user: { type: 'string' },
        role: { type: 'string', multiple: true },
        ttl: { type: 'string' },
        email: { type: 'string' },
        name: { type: 'string' },
      },
    }));
  } catch (err) {
    return `token: ${(err as Error).message}; ${USAGE}`;
  }
  const userId = values.user;
  if (userId === undefined || userId.trim() === '') return `token: --user is required; ${USAGE}`;
  let expiresInSec = 3600;
  if (values.ttl !== undefined) {
    expiresInSec = Number(values.ttl);
    if (!/^\d+$/.test(values.ttl) || !Number.isSafeInteger(expiresInSec) || expiresInSec <= 0) {
      return 'token: --ttl must be a positive whole number of seconds';
    }
  }
  const parsed: TokenCommandArgs = { userId, roles: values.role ?? [], expiresInSec };
  if (values.email !== undefined) parsed.email = values.email;
  if (values.name !== undefined) parsed.name = values.name;
  return parsed;
}

async function main(): Promise<number> {
  // A token from the dev key is worthless to a server that trusts a real
  // JWKS; refusing here saves someone from debugging a 4003.
  if ((process.env['APP_ENV_JWKS_URL'] ?? '').trim() !== '') {
    process.stderr.write('token: APP_ENV_JWKS_URL is set; the dev issuer is only used without it (dev mode)\n');
    return 1;
  }
  const args = parseTokenArgs(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n`);
    return 1;
  }
  const issuer = await DevIssuer.loadOrCreate(resolve(process.cwd(), '.data'));
  const { userId, roles, expiresInSec, email, name } = args;
  const token = await issuer.sign({
    userId,
    roles,
    expiresInSec,
    ...(email !== undefined ? { email } : {}),
    ...(name !== undefined ? { name } : {}),
  });
  process.stdout.write(`${token}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`token: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
