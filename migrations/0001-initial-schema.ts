import { Migration } from '@mikro-orm/migrations';

/**
 * The notification table this service owns, and the policy and role tables
 * it reads. Names are quoted exactly as the contract spells them.
 *
 * The policy and role tables are written by other services and may already
 * exist in a shared database, so they (and their indexes) are created only
 * when missing; `ActivityNotification` is ours alone and created outright.
 */
export class Migration0001InitialSchema extends Migration {
  override up(): void {
    this.addSql(`
      create table "ActivityNotification" (
        "id" bigint not null primary key,
        "event_id" text not null,
        "recipient_id" text not null,
        "actor_id" text not null,
        "type" text not null,
        "title" text not null,
        "content" text not null,
        "html" text not null,
        "metadata" jsonb not null default '{}'::jsonb,
        "is_read" boolean not null default false,
        "read_at" timestamptz null,
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now(),
        "deleted_at" timestamptz null,
        constraint "ActivityNotification_event_id_recipient_id_unique" unique ("event_id", "recipient_id")
      )`);
    // The feed query: one recipient, newest first, live rows only.
    this.addSql(`
      create index "ActivityNotification_recipient_feed_idx"
        on "ActivityNotification" ("recipient_id", "created_at" desc, "id" desc)
        where "deleted_at" is null`);
    // Unread counts and mark-all-read.
    this.addSql(`
      create index "ActivityNotification_recipient_read_idx"
        on "ActivityNotification" ("recipient_id", "is_read")
        where "deleted_at" is null`);

    this.addSql(`
      create table if not exists "PolicyDefinition" (
        "id" bigserial primary key,
        "variant" text not null check ("variant" in ('g', 'p')),
        "subject_type" text not null check ("subject_type" in ('user', 'role')),
        "subject_id" text not null,
        "target_type" text not null check ("target_type" in ('merchant', 'organizer', 'permission')),
        "target_id" text not null,
        "created_at" timestamptz not null default now(),
        "deleted_at" timestamptz null
      )`);
    // Members of a merchant / organizer.
    this.addSql(`
      create index if not exists "PolicyDefinition_target_idx"
        on "PolicyDefinition" ("target_type", "target_id", "variant")
        where "deleted_at" is null`);
    // What a user belongs to / is granted.
    this.addSql(`
      create index if not exists "PolicyDefinition_subject_idx"
        on "PolicyDefinition" ("subject_id")
        where "deleted_at" is null`);

    this.addSql(`
      create table if not exists "Permission" (
        "id" bigserial primary key,
        "code" text not null,
        "name" text not null,
        "description" text null,
        "created_at" timestamptz not null default now(),
        constraint "Permission_code_unique" unique ("code")
      )`);
    this.addSql(`
      create table if not exists "Role" (
        "id" bigserial primary key,
        "identifier" text not null,
        "name" text not null,
        "priority" integer not null default 0,
        "created_at" timestamptz not null default now(),
        constraint "Role_identifier_unique" unique ("identifier")
      )`);
    this.addSql(`
      create table if not exists "RolePermission" (
        "role_id" bigint not null references "Role" ("id") on delete cascade,
        "permission_id" bigint not null references "Permission" ("id") on delete cascade,
        "created_at" timestamptz not null default now(),
        constraint "RolePermission_pkey" primary key ("role_id", "permission_id")
      )`);
    // The primary key serves lookups by role; this one serves "who holds permission X".
    this.addSql(`
      create index if not exists "RolePermission_permission_idx"
        on "RolePermission" ("permission_id")`);
  }

  override down(): void {
    this.addSql('drop table if exists "RolePermission"');
    this.addSql('drop table if exists "Role"');
    this.addSql('drop table if exists "Permission"');
    this.addSql('drop table if exists "PolicyDefinition"');
    this.addSql('drop table if exists "ActivityNotification"');
  }
}
