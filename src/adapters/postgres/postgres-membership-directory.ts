import type { MikroORM } from '@mikro-orm/postgresql';
import type { MembershipDirectory, MembershipTarget } from '../../application/ports/membership-directory.port.ts';

/**
 * A membership is a live `g` row from a user to the merchant or organizer:
 * `p` rows are grants, `role` subjects are not people, and soft-deleted rows
 * are revoked memberships. The same user may hold several live rows (other
 * services write this table), hence DISTINCT.
 */
const LIVE_MEMBERSHIP = `
  from "PolicyDefinition"
 where "variant" = 'g'
   and "subject_type" = 'user'
   and "target_type" = ?
   and "target_id" = ?
   and "deleted_at" is null`;

/** MembershipDirectory on the shared `PolicyDefinition` table (read-only). */
export class PostgresMembershipDirectory implements MembershipDirectory {
  constructor(private readonly orm: MikroORM) {}

  async membersOf(target: MembershipTarget, targetId: string): Promise<string[]> {
    // Plain knex with bound parameters: no entity manager fork, and the values are not pasted into the SQL text.
    const result = (await this.#knex().raw(`select distinct "subject_id" ${LIVE_MEMBERSHIP}`, [target, targetId])) as { rows: Array<{ subject_id: string }> };
    return result.rows.map((row) => row.subject_id);
  }

  async isMember(userId: string, target: MembershipTarget, targetId: string): Promise<boolean> {
    const result = (await this.#knex().raw(`select 1 as "found" ${LIVE_MEMBERSHIP} and "subject_id" = ? limit 1`, [target, targetId, userId])) as {
      rows: unknown[];
    };
    return result.rows.length > 0;
  }

  #knex() {
    return this.orm.em.getConnection().getKnex();
  }
}
