import type { ReliabilityScenario } from './scenario.ts';
import { scenario as authorization } from './scenarios/authorization.ts';
import { scenario as dependencyAudit } from './scenarios/dependency-audit.ts';
import { scenario as restInput } from './scenarios/rest-input.ts';
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
  // Fault and load scenarios go here.
];
