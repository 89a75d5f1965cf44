import type { Migration } from './index';

/**
 * Rotation of Airlock's own SSH identity across the fleet (keys/ssh-rotation.ts), journaled like
 * provisioning (jobs/journal.ts): a rotation, its hosts, each host's steps (add, verify, remove).
 * The next key's private part is sealed in the vault under `ssh.identity.private.next.<rotation id>` until
 * it is promoted; its public part is on record here. The current key keeps the names it always had
 * (`ssh.identity.private`, meta `ssh.identity.public`), so existing databases need no change.
 */
export const m0011: Migration = {
  version: 11,
  name: '0011-ssh-rotation',
  up(db) {
    db.exec(`
      CREATE TABLE ssh_rotations (
        id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        old_public TEXT NOT NULL,          -- the authorized_keys line being retired
        old_fingerprint TEXT NOT NULL,
        new_public TEXT NOT NULL,          -- the authorized_keys line being rolled out
        new_fingerprint TEXT NOT NULL,
        promoted_at TEXT,                  -- when the new key became current and the old one left the vault
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        owner TEXT                         -- '<pid>:<process start>' of the process running it, while running
      ) STRICT;
      CREATE INDEX ssh_rotations_started ON ssh_rotations(started_at);

      CREATE TABLE ssh_rotation_hosts (
        rotation_id TEXT NOT NULL REFERENCES ssh_rotations(id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        PRIMARY KEY (rotation_id, host)
      ) STRICT;

      CREATE TABLE ssh_rotation_steps (
        rotation_id TEXT NOT NULL,
        host TEXT NOT NULL,
        idx INTEGER NOT NULL,
        step TEXT NOT NULL CHECK (step IN ('add', 'verify', 'remove')),
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        PRIMARY KEY (rotation_id, host, idx),
        FOREIGN KEY (rotation_id, host) REFERENCES ssh_rotation_hosts(rotation_id, host) ON DELETE CASCADE
      ) STRICT;
    `);
  },
};
