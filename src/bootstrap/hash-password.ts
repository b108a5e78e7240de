import { hashPassword } from '../domain/password-hash.ts';

/**
 * `npm run hash-password -- <password>`: prints the hash to put after
 * `user:` in APP_ENV_BASIC_AUTH_USERS, alone on the last line.
 */
const password = process.argv[2];
if (password === undefined || password.length === 0) {
  process.stderr.write('usage: npm run hash-password -- <password>\n');
  process.exit(1);
}
if (password.length < 12) process.stderr.write('warning: a service password shorter than 12 characters is easy to guess\n');
process.stdout.write(`${await hashPassword(password)}\n`);
