import type { ReliabilityScenario } from './scenario.ts';
import { scenario as authorization } from './scenarios/authorization.ts';
import { scenario as connectionFlood } from './scenarios/connection-flood.ts';
import { scenario as dependencyAudit } from './scenarios/dependency-audit.ts';
import { scenario as hold20k } from './scenarios/hold-20k.ts';
import { scenario as instanceKill } from './scenarios/instance-kill.ts';
import { scenario as postgresOutage } from './scenarios/postgres-outage.ts';
import { scenario as redeliveryStorm } from './scenarios/redelivery-storm.ts';
import { scenario as redisRestart } from './scenarios/redis-restart.ts';
import { scenario as restInput } from './scenarios/rest-input.ts';
import { scenario as rollingRestart } from './scenarios/rolling-restart.ts';
import { scenario as slowConsumers } from './scenarios/slow-consumers.ts';
import { scenario as streamFrameFuzz } from './scenarios/stream-frame-fuzz.ts';
import { scenario as tokenAttacks } from './scenarios/token-attacks.ts';

/**
 * Every scenario `npm run reliability` runs, in this order. Listed by hand:
 * adding one is an import and an entry here (see README.md), nothing is
 * discovered from the file system.
 */
export const scenarios: readonly ReliabilityScenario[] = [
  // Attack: bad input and hostile clients.
  streamFrameFuzz,
  tokenAttacks,
  authorization,
  restInput,
  dependencyAudit,
  // Faults: real processes, real Redis and PostgreSQL.
  redisRestart,
  postgresOutage,
  instanceKill,
  redeliveryStorm,
  rollingRestart,
  // Load.
  slowConsumers,
  connectionFlood,
  hold20k,
];
