import { BigIntType, EntitySchema } from '@mikro-orm/core';

/**
 * Table mappings for MikroORM. They live here, never on domain types: the
 * domain stays free of the ORM, and mapping by schema needs no decorator
 * metadata (which the TypeScript toolchain used here does not emit).
 *
 * Table and column names are part of the service contract: other services
 * write PolicyDefinition and the role tables, operators query them by hand.
 * The DDL itself lives in `migrations/`; these schemas must agree with it.
 */

/** One `ActivityNotification` row; `id` is a bigint snowflake, kept as a decimal string. */
export interface ActivityNotificationRecord {
  id: string;
  eventId: string;
  recipientId: string;
  actorId: string;
  type: string;
  title: string;
  content: string;
  html: string;
  metadata: Record<string, unknown>;
  isRead: boolean;
  readAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

export const ActivityNotificationSchema = new EntitySchema<ActivityNotificationRecord>({
  name: 'ActivityNotification',
  tableName: 'ActivityNotification',
  properties: {
    id: { type: new BigIntType('string'), primary: true, autoincrement: false },
    eventId: { type: 'string', fieldName: 'event_id', columnType: 'text' },
    recipientId: { type: 'string', fieldName: 'recipient_id', columnType: 'text' },
    actorId: { type: 'string', fieldName: 'actor_id', columnType: 'text' },
    type: { type: 'string', columnType: 'text' },
    title: { type: 'string', columnType: 'text' },
    content: { type: 'string', columnType: 'text' },
    html: { type: 'string', columnType: 'text' },
    metadata: { type: 'json', columnType: 'jsonb' },
    isRead: { type: 'boolean', fieldName: 'is_read', default: false },
    readAt: { type: 'Date', fieldName: 'read_at', columnType: 'timestamptz', nullable: true },
    createdAt: { type: 'Date', fieldName: 'created_at', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', fieldName: 'updated_at', columnType: 'timestamptz' },
    deletedAt: { type: 'Date', fieldName: 'deleted_at', columnType: 'timestamptz', nullable: true },
  },
  uniques: [{ properties: ['eventId', 'recipientId'] }],
});

/** `g` = membership (user → merchant/organizer), `p` = grant. */
export type PolicyVariant = 'g' | 'p';

export interface PolicyDefinitionRecord {
  id: string;
  variant: PolicyVariant;
  subjectType: 'user' | 'role';
  subjectId: string;
  targetType: 'merchant' | 'organizer' | 'permission';
  targetId: string;
  createdAt: Date;
  deletedAt: Date | null;
}

export const PolicyDefinitionSchema = new EntitySchema<PolicyDefinitionRecord>({
  name: 'PolicyDefinition',
  tableName: 'PolicyDefinition',
  properties: {
    id: { type: new BigIntType('string'), primary: true },
    variant: { type: 'string', columnType: 'text' },
    subjectType: { type: 'string', fieldName: 'subject_type', columnType: 'text' },
    subjectId: { type: 'string', fieldName: 'subject_id', columnType: 'text' },
    targetType: { type: 'string', fieldName: 'target_type', columnType: 'text' },
    targetId: { type: 'string', fieldName: 'target_id', columnType: 'text' },
    createdAt: { type: 'Date', fieldName: 'created_at', columnType: 'timestamptz' },
    deletedAt: { type: 'Date', fieldName: 'deleted_at', columnType: 'timestamptz', nullable: true },
  },
});

export interface PermissionRecord {
  id: string;
  code: string;
  name: string;
  description: string | null;
  createdAt: Date;
}

export const PermissionSchema = new EntitySchema<PermissionRecord>({
  name: 'Permission',
  tableName: 'Permission',
  properties: {
    id: { type: new BigIntType('string'), primary: true },
    code: { type: 'string', columnType: 'text', unique: true },
    name: { type: 'string', columnType: 'text' },
    description: { type: 'string', columnType: 'text', nullable: true },
    createdAt: { type: 'Date', fieldName: 'created_at', columnType: 'timestamptz' },
  },
});

export interface RoleRecord {
  id: string;
  identifier: string;
  name: string;
  priority: number;
  createdAt: Date;
}

export const RoleSchema = new EntitySchema<RoleRecord>({
  name: 'Role',
  tableName: 'Role',
  properties: {
    id: { type: new BigIntType('string'), primary: true },
    identifier: { type: 'string', columnType: 'text', unique: true },
    name: { type: 'string', columnType: 'text' },
    priority: { type: 'integer' },
    createdAt: { type: 'Date', fieldName: 'created_at', columnType: 'timestamptz' },
  },
});

/** The pair is the primary key: a role holds a permission at most once. */
export interface RolePermissionRecord {
  roleId: string;
  permissionId: string;
  createdAt: Date;
}

export const RolePermissionSchema = new EntitySchema<RolePermissionRecord>({
  name: 'RolePermission',
  tableName: 'RolePermission',
  properties: {
    roleId: { type: new BigIntType('string'), fieldName: 'role_id', primary: true, autoincrement: false },
    permissionId: { type: new BigIntType('string'), fieldName: 'permission_id', primary: true, autoincrement: false },
    createdAt: { type: 'Date', fieldName: 'created_at', columnType: 'timestamptz' },
  },
});

export const ENTITY_SCHEMAS = [
  ActivityNotificationSchema,
  PolicyDefinitionSchema,
  PermissionSchema,
  RoleSchema,
  RolePermissionSchema,
] as const;
