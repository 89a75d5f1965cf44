import type Database from 'better-sqlite3';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';
import { m0004 } from './0004-account-identity';
import { m0005 } from './0005-known-host-keys';
import { m0006 } from './0006-operation-names';
import { m0007 } from './0007-key-hierarchy';
import { m0008 } from './0008-certificates';
import { m0009 } from './0009-key-ceremonies';
import { m0010 } from './0010-models-keys';
import { m0011 } from './0011-ssh-rotation';
import { m0012 } from './0012-models-catalog';
import { m0013 } from './0013-console-keys';
import { m0014 } from './0014-models-rekey';
import { m0015 } from './0015-models-catalog-ops';
import { m0016 } from './0016-cert-renewals';
import { m0017 } from './0017-access';

export interface Migration {
  version: number;
  name: string;
  up(db: Database.Database): void;
  /**
   * Run with foreign keys off (a table rebuild: dropping a parent table would otherwise cascade
   * its deletes); the migration's transaction ends with PRAGMA foreign_key_check.
   */
  foreignKeysOff?: boolean;
}

/** In order. Add a file `NNNN-name.ts` and a test `NNNN-name.test.ts` for each new one. */
export const migrations: readonly Migration[] = [m0001, m0002, m0003, m0004, m0005, m0006, m0007, m0008, m0009, m0010, m0011, m0012, m0013, m0014, m0015, m0016, m0017];
