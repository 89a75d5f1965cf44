import type { Migration } from './index';

/**
 * The catalog as operations (issue 13, electron/core/models/handlers.ts):
 *
 * - `model_media`: where a version was imported from (the media path, resolved under a media
 *   root, and its format), so `models:verify` and `models:publish` re-read the same media by
 *   default. Not part of the version's identity: the media is mounted elsewhere next time.
 * - `model_publications`: where each version is published (registry, repository, tag, the
 *   registry's manifest digest, the catalog digest it stands for, encrypted or not), one row per
 *   version and registry, replaced on a re-publish.
 * - `model_registry`: the registry versions are published to (one row: its URL).
 * - The approval operation `models:approvePhi`: approving a version classified `phi` needs a
 *   security officer other than the requester (the two-person rule), like `models:grantPhi`.
 */
export const m0015: Migration = {
  version: 15,
  name: '0015-models-catalog-ops',
  up(db) {
    db.exec(`
      CREATE TABLE model_media (
        model   TEXT NOT NULL,
        version TEXT NOT NULL,
        format  TEXT NOT NULL CHECK (format IN ('directory', 'oci-layout', 'modelkit')),
        path    TEXT NOT NULL,
        PRIMARY KEY (model, version),
        FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
      ) STRICT;

      CREATE TABLE model_publications (
        model          TEXT NOT NULL,
        version        TEXT NOT NULL,
        registry       TEXT NOT NULL,
        repository     TEXT NOT NULL,
        tag            TEXT NOT NULL,
        digest         TEXT NOT NULL CHECK (digest GLOB 'sha256:*'),
        catalog_digest TEXT NOT NULL CHECK (catalog_digest GLOB 'sha256:*'),
        encrypted      INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
        published_at   TEXT NOT NULL,
        published_by   TEXT NOT NULL,
        -- The signature artifact attached to it (models/signature.ts), null when published unsigned (no CA yet).
        signature      TEXT CHECK (signature IS NULL OR signature GLOB 'sha256:*'),
        PRIMARY KEY (model, version, registry),
        FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE RESTRICT
      ) STRICT;

      CREATE TABLE model_registry (
        singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
        url        TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
      ) STRICT;
    `);
    db.prepare(
      "INSERT INTO approval_policy (operation, description, approver_roles, expiry_minutes, required, updated_at) VALUES (?, ?, ?, 1440, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    ).run('models:approvePhi', 'Approve a model version classified PHI', JSON.stringify(['officer']));
  },
};
