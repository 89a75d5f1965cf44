import type { Migration } from './index';

/**
 * The models catalog (issue 13, electron/core/models/catalog.ts): datasets, models, their
 * versions with classification, provenance and lineage, and every file of a version with its
 * SHA-256. The database itself keeps what must never change:
 *
 * - Classification is one of four ordered levels (`public` < `internal` < `confidential` <
 *   `phi`); status moves staged → approved → deprecated, and any of them → revoked, never back
 *   (triggers refuse any other transition, whatever code runs).
 * - Once a version leaves `staged`, nothing that its identity covers changes: its files, its
 *   lineage, its classification, license, base, provenance and manifest digest (triggers).
 *   An approved version has a manifest digest: its identity.
 * - A dataset in the lineage of a version cannot be deleted (foreign keys, RESTRICT).
 */
export const m0012: Migration = {
  version: 12,
  name: '0012-models-catalog',
  up(db) {
    db.exec(`
      CREATE TABLE datasets (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        description     TEXT NOT NULL DEFAULT '',
        classification  TEXT NOT NULL CHECK (classification IN ('public', 'internal', 'confidential', 'phi')),
        retention_until TEXT,
        location        TEXT NOT NULL,
        owner           TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        created_by      TEXT NOT NULL
      );

      CREATE TABLE models (
        name        TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        owner       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
      );

      CREATE TABLE model_versions (
        model             TEXT NOT NULL REFERENCES models (name) ON DELETE RESTRICT,
        version           TEXT NOT NULL,
        classification    TEXT NOT NULL CHECK (classification IN ('public', 'internal', 'confidential', 'phi')),
        license           TEXT NOT NULL,
        status            TEXT NOT NULL DEFAULT 'staged' CHECK (status IN ('staged', 'approved', 'deprecated', 'revoked')),
        base_model        TEXT,
        base_version      TEXT,
        format            TEXT NOT NULL CHECK (format IN ('directory', 'oci-layout', 'modelkit')),
        source            TEXT NOT NULL,
        imported_at       TEXT NOT NULL,
        imported_by       TEXT NOT NULL,
        files             INTEGER NOT NULL,
        total_bytes       INTEGER NOT NULL,
        manifest_digest   TEXT CHECK (manifest_digest IS NULL OR (length(manifest_digest) = 71 AND manifest_digest LIKE 'sha256:%')),
        status_at         TEXT NOT NULL,
        status_by         TEXT NOT NULL,
        status_reason     TEXT,
        PRIMARY KEY (model, version),
        FOREIGN KEY (base_model, base_version) REFERENCES model_versions (model, version) ON DELETE RESTRICT,
        CHECK ((base_model IS NULL) = (base_version IS NULL)),
        CHECK (status = 'staged' OR manifest_digest IS NOT NULL)
      );
      CREATE UNIQUE INDEX model_versions_digest ON model_versions (manifest_digest) WHERE manifest_digest IS NOT NULL;

      CREATE TABLE model_files (
        model    TEXT NOT NULL,
        version  TEXT NOT NULL,
        path     TEXT NOT NULL,
        size     INTEGER NOT NULL CHECK (size >= 0),
        sha256   TEXT NOT NULL CHECK (length(sha256) = 64),
        PRIMARY KEY (model, version, path),
        FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
      ) WITHOUT ROWID;

      CREATE TABLE model_lineage (
        model      TEXT NOT NULL,
        version    TEXT NOT NULL,
        dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
        role       TEXT NOT NULL CHECK (role IN ('training', 'fine-tuning', 'evaluation')),
        PRIMARY KEY (model, version, dataset_id, role),
        FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
      ) WITHOUT ROWID;

      CREATE TRIGGER model_versions_status BEFORE UPDATE OF status ON model_versions
      WHEN NOT (OLD.status = NEW.status
             OR (OLD.status = 'staged' AND NEW.status IN ('approved', 'revoked'))
             OR (OLD.status = 'approved' AND NEW.status IN ('deprecated', 'revoked'))
             OR (OLD.status = 'deprecated' AND NEW.status = 'revoked'))
      BEGIN SELECT RAISE(ABORT, 'model version status may not move that way'); END;

      CREATE TRIGGER model_versions_frozen BEFORE UPDATE ON model_versions
      WHEN OLD.status <> 'staged' AND (
             NEW.classification IS NOT OLD.classification OR NEW.license IS NOT OLD.license
          OR NEW.base_model IS NOT OLD.base_model OR NEW.base_version IS NOT OLD.base_version
          OR NEW.format IS NOT OLD.format OR NEW.source IS NOT OLD.source
          OR NEW.imported_at IS NOT OLD.imported_at OR NEW.imported_by IS NOT OLD.imported_by
          OR NEW.files IS NOT OLD.files OR NEW.total_bytes IS NOT OLD.total_bytes
          OR NEW.manifest_digest IS NOT OLD.manifest_digest OR NEW.model IS NOT OLD.model OR NEW.version IS NOT OLD.version)
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;

      CREATE TRIGGER model_versions_no_delete BEFORE DELETE ON model_versions
      WHEN OLD.status <> 'staged'
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;

      CREATE TRIGGER model_files_frozen_insert BEFORE INSERT ON model_files
      WHEN (SELECT status FROM model_versions WHERE model = NEW.model AND version = NEW.version) <> 'staged'
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;
      CREATE TRIGGER model_files_frozen_update BEFORE UPDATE ON model_files
      WHEN (SELECT status FROM model_versions WHERE model = OLD.model AND version = OLD.version) <> 'staged'
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;
      CREATE TRIGGER model_files_frozen_delete BEFORE DELETE ON model_files
      WHEN (SELECT status FROM model_versions WHERE model = OLD.model AND version = OLD.version) <> 'staged'
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;

      CREATE TRIGGER model_lineage_frozen_insert BEFORE INSERT ON model_lineage
      WHEN (SELECT status FROM model_versions WHERE model = NEW.model AND version = NEW.version) <> 'staged'
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;
      CREATE TRIGGER model_lineage_frozen_delete BEFORE DELETE ON model_lineage
      WHEN (SELECT status FROM model_versions WHERE model = OLD.model AND version = OLD.version) <> 'staged'
      BEGIN SELECT RAISE(ABORT, 'an approved model version is immutable'); END;
    `);
  },
};
