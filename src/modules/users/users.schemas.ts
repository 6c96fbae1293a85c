// TypeBox schemas of the users routes: validation, serialization and the OpenAPI document at once.
import { Type } from 'typebox';

const Timestamp = Type.String({ format: 'date-time', examples: ['2026-11-28T04:10:00.123Z'] });
// Nullable fields of responses are `type: [T, 'null']` (OpenAPI 3.1), not anyOf: fast-json-stringify
// picks an anyOf branch by validating the value against each one (a date-time regex per timestamp),
// which made a 20-user page take 3.5 times as long to serialize.
const NullableTimestamp = Type.Unsafe<string | null>({
  type: ['string', 'null'],
  format: 'date-time',
  examples: ['2026-11-28T04:10:00.123Z'],
});
const NullableString = Type.Unsafe<string | null>({ type: ['string', 'null'] });
export const RoleSchema = Type.Union([Type.Literal('admin'), Type.Literal('user')]);
export const StatusSchema = Type.Union([Type.Literal('active'), Type.Literal('disabled')]);
const Roles = Type.Array(RoleSchema, { minItems: 1, maxItems: 2, uniqueItems: true });

/** The user the document's examples show, in every shape a route answers with. */
export const USER_EXAMPLE = {
  id: '019acb3e-8d2a-7c41-9a35-2f6f2b1e4d10',
  username: 'alice',
  email: 'alice@example.com',
  display_name: 'Alice Liddell',
  roles: ['user'],
  status: 'active',
  created_at: '2026-11-28T04:10:00.123Z',
  updated_at: '2026-11-28T04:10:00.123Z',
  last_login_at: '2026-11-29T08:30:12.456Z',
  last_seen_at: '2026-11-29T08:41:03.789Z',
};

export const UserSchema = Type.Object(
  {
    id: Type.String({ examples: ['019acb3e-8d2a-7c41-9a35-2f6f2b1e4d10'] }),
    username: Type.String({ examples: ['alice'] }),
    email: Type.String({ examples: ['alice@example.com'] }),
    display_name: NullableString,
    roles: Type.Array(RoleSchema),
    status: StatusSchema,
    created_at: Timestamp,
    updated_at: Timestamp,
    last_login_at: NullableTimestamp,
    last_seen_at: NullableTimestamp,
  },
  { $id: 'User', additionalProperties: false, examples: [USER_EXAMPLE] },
);

// Bounds here only stop absurd input early; the rules (and their messages) live in the service.
export const CreateUserBody = Type.Object(
  {
    username: Type.String({ maxLength: 256, examples: ['alice'] }),
    email: Type.String({ maxLength: 512, examples: ['alice@example.com'] }),
    password: Type.String({ maxLength: 1024, examples: ['correct horse battery staple'] }),
    display_name: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Null()])),
    roles: Type.Optional(Roles),
  },
  {
    additionalProperties: false,
    examples: [{ username: 'alice', email: 'alice@example.com', password: 'correct horse battery staple', display_name: 'Alice Liddell' }],
  },
);

export const UpdateUserBody = Type.Object(
  {
    email: Type.Optional(Type.String({ maxLength: 512 })),
    display_name: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Null()])),
    roles: Type.Optional(Roles),
    status: Type.Optional(StatusSchema),
  },
  { additionalProperties: false, examples: [{ display_name: 'Alice Liddell' }] },
);

export const ChangePasswordBody = Type.Object(
  {
    current_password: Type.String({ maxLength: 1024 }),
    new_password: Type.String({ maxLength: 1024 }),
  },
  {
    additionalProperties: false,
    examples: [{ current_password: 'correct horse battery staple', new_password: 'a longer, newer passphrase' }],
  },
);

export const ListUsersQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    status: Type.Optional(StatusSchema),
    role: Type.Optional(RoleSchema),
    last_login_before: Type.Optional(Type.String({ format: 'date-time' })),
    last_login_after: Type.Optional(Type.String({ format: 'date-time' })),
    never_logged_in: Type.Optional(Type.Boolean()),
    sort: Type.Union(
      ['created_at', '-created_at', 'username', '-username', 'last_login_at', '-last_login_at'].map((value) => Type.Literal(value)),
      { default: 'created_at' },
    ),
  },
  { additionalProperties: false },
);

export const USER_PAGE_EXAMPLE = { items: [USER_EXAMPLE], next_cursor: 'eyJrIjoiYWxpY2UiLCJpZCI6IjAxOWFjYjNlIn0' };

export const UserPage = Type.Object({
  items: Type.Array(Type.Ref('User')),
  next_cursor: NullableString,
});

export const LoginHistoryQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

export const LOGIN_HISTORY_EXAMPLE = {
  items: [{ at: '2026-11-29T08:30:12.456Z', success: true, method: 'password', ip: '203.0.113.7', user_agent: 'curl/8.5.0' }],
  next_cursor: null,
};

export const LoginHistoryPage = Type.Object({
  items: Type.Array(
    Type.Object({
      at: Timestamp,
      success: Type.Boolean(),
      method: Type.Union([Type.Literal('password'), Type.Literal('basic')]),
      ip: Type.Union([Type.String(), Type.Null()]),
      user_agent: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  next_cursor: NullableString,
});
