import crypto from 'node:crypto';
import type { Migration } from './index';

/** A random RFC 4122 version 4 UUID, in SQL: the default of users.uid for rows inserted by hand. */
export const SQL_UUID_V4 = `(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' ||
  substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))`;

/**
 * Account identity (issue 9, points 3 and 4).
 *
 * Before: `users.id INTEGER PRIMARY KEY` — SQLite hands out max(rowid)+1, so removing the user
 * with the highest id and creating another gave the new account the removed one's id, and
 * everything that named the old account by id (a live session in another shell, an approval's
 * requester or approver) now named the new one.
 *
 * After:
 * - `users` is rebuilt with `id INTEGER PRIMARY KEY AUTOINCREMENT` (ids are never handed out
 *   twice) and an immutable random `uid` (UUID v4): the account identity that sessions,
 *   approvals and audit events carry. Triggers refuse any change of `id` or `uid`.
 * - `sqlite_sequence` starts above every user id this database has ever referred to: the users
 *   left, and the requesters, approvers and creators of records that outlived their accounts.
 * - Approval requests carry the requester's and approver's uid and the identity and state of the
 *   account (or host) they act on (`target`, JSON), checked again at approval and at execution.
 *   Open requests filed before this migration carry none: they are cancelled (file them again).
 *
 * Ids and foreign keys are preserved (vault slots, TOTP seeds and recovery codes are bound to the
 * id). SQLite cannot ALTER a key to AUTOINCREMENT, hence the rebuild, which runs with foreign
 * keys off (declared below) and ends with a foreign_key_check.
 */
export const m0004: Migration = {
  version: 4,
  name: '0004-account-identity',
  foreignKeysOff: true,
  up(db) {
    const maxRef = db
      .prepare(
        `SELECT max(
           (SELECT coalesce(max(id), 0) FROM users),
           (SELECT coalesce(max(created_by), 0) FROM users),
           (SELECT coalesce(max(requested_by), 0) FROM approval_requests),
           (SELECT coalesce(max(decided_by), 0) FROM approval_requests),
           (SELECT coalesce(max(user_id), 0) FROM vault_slots),
           (SELECT coalesce(max(user_id), 0) FROM user_totp),
           (SELECT coalesce(max(user_id), 0) FROM recovery_codes)
         ) AS n`,
      )
      .pluck()
      .get() as number;

    db.exec(`
      CREATE TABLE users_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,     -- never reused
        uid TEXT NOT NULL UNIQUE DEFAULT ${SQL_UUID_V4} CHECK (length(uid) = 36),  -- the account identity
        name TEXT NOT NULL UNIQUE,
        roles TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
        created_seq INTEGER NOT NULL DEFAULT 0,
        roles_seq INTEGER NOT NULL DEFAULT 0,
        cred_seq INTEGER NOT NULL DEFAULT 0,
        auth_epoch INTEGER NOT NULL DEFAULT 0,
        must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
        password_changed_at TEXT,
        last_login_at TEXT,
        disabled_at TEXT
      ) STRICT;
    `);
    const cols =
      'id, name, roles, password_hash, created_at, disabled, created_by, created_seq, roles_seq, cred_seq, auth_epoch, must_change_password, password_changed_at, last_login_at, disabled_at';
    const copy = db.prepare(`INSERT INTO users_v4 (uid, ${cols}) SELECT ?, ${cols} FROM users WHERE id = ?`);
    for (const id of db.prepare('SELECT id FROM users ORDER BY id').pluck().all() as number[]) copy.run(crypto.randomUUID(), id);
    db.exec(`
      DROP TABLE users;
      ALTER TABLE users_v4 RENAME TO users;
      CREATE TRIGGER users_identity_immutable BEFORE UPDATE OF id, uid ON users
        WHEN NEW.id IS NOT OLD.id OR NEW.uid IS NOT OLD.uid
        BEGIN SELECT RAISE(ABORT, 'a user''s id and uid never change'); END;
    `);
    db.prepare("DELETE FROM sqlite_sequence WHERE name = 'users'").run();
    db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', ?)").run(maxRef);

    db.exec(`
      ALTER TABLE approval_requests ADD COLUMN requested_by_uid TEXT;
      ALTER TABLE approval_requests ADD COLUMN decided_by_uid TEXT;
      -- JSON: the account or host the call acts on, its identity and state when filed (null: none).
      ALTER TABLE approval_requests ADD COLUMN target TEXT;
      UPDATE approval_requests
        SET status = 'cancelled',
            decision_reason = 'filed before approvals were bound to account identities (migration 0004): file it again'
        WHERE status IN ('pending', 'approved');
    `);
  },
};
