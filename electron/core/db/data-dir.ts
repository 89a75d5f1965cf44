import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';

/**
 * The data directory holds the database (password hashes, sealed secrets, approvals, the audit
 * trail), its -wal and -shm, audit.head, exports and the offline store. Threats:
 *  - an existing directory made with the operator's umask (`mkdir -m755 D`) lets every local user
 *    read all of it: the directory becomes 0700 and every file in it 0600 when Airlock opens it;
 *  - a directory owned by someone else, or writable by others, lets them swap the database or
 *    plant a -wal that SQLite would replay, or read what Airlock writes later: it is refused, as
 *    is a database file (or its -wal, -shm, audit.head) that is a symbolic link, not ours, or
 *    writable by others. Nothing is changed in a refused directory.
 * The checks are made on what was opened (fstat of the directory's descriptor, then the real path
 * is confirmed to be that same directory), so a symbolic link to someone else's directory is
 * judged by its target.
 */

/** Files Airlock opens by name inside the data directory. */
const NAMED_FILES = (dbFile: string) => [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`, 'audit.head'];

function unsafe(message: string): AirlockError {
  return new AirlockError('DATA_DIR_UNSAFE', `${message}. Airlock refuses to use it; nothing was changed.`);
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

function who(uid: number): string {
  return uid === 0 ? 'root (uid 0)' : `uid ${uid}`;
}

/** Owned by us, not writable by group or others; `what` names it in the refusal. */
function checkOwned(st: fs.Stats, what: string, uid: number): void {
  if (st.uid !== uid) throw unsafe(`${what} is owned by ${who(st.uid)}, not by the user running Airlock (${who(uid)})`);
  if (st.mode & 0o022) {
    throw unsafe(`${what} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${octal(st.mode)}): someone else may have changed it; check it, then \`chmod go-w\` it`);
  }
}

/**
 * Makes sure `dir` (created 0700 when missing) is safe to use and private; returns its real path,
 * which the caller uses from then on. Throws DATA_DIR_UNSAFE otherwise.
 */
export function secureDataDir(dir: string, dbFile: string, opts: { uid?: number } = {}): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32' || typeof process.getuid !== 'function') return dir; // NTFS ACLs, not modes
  const uid = opts.uid ?? process.getuid();

  const link = fs.lstatSync(dir);
  if (link.isSymbolicLink() && link.uid !== uid && link.uid !== 0) throw unsafe(`The data directory ${dir} is a symbolic link owned by ${who(link.uid)}`);

  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw unsafe(`The data directory ${dir} cannot be opened (${(e as { code?: string }).code ?? String(e)})`);
  }
  let real: string;
  try {
    const st = fs.fstatSync(fd);
    checkOwned(st, `The data directory ${dir}`, uid);
    real = fs.realpathSync(dir);
    const again = fs.lstatSync(real);
    if (again.dev !== st.dev || again.ino !== st.ino) throw unsafe(`The data directory ${dir} changed while it was being opened`);

    for (const name of NAMED_FILES(dbFile)) {
      let f: fs.Stats;
      try {
        f = fs.lstatSync(path.join(real, name));
      } catch {
        continue;
      }
      const what = path.join(dir, name);
      if (!f.isFile()) throw unsafe(`${what} is not a regular file${f.isSymbolicLink() ? ' (a symbolic link)' : ''}`);
      checkOwned(f, what, uid);
    }
    // Everything is checked before anything is changed.
    const fixes: Array<[string, number]> = [];
    collectFixes(real, uid, 0, fixes);
    if ((st.mode & 0o777) !== 0o700) fs.fchmodSync(fd, 0o700);
    for (const [p, mode] of fixes) fs.chmodSync(p, mode);
  } finally {
    fs.closeSync(fd);
  }

  // A new database starts 0600 whatever the umask: SQLite gives its -wal and -shm the database's mode.
  const db = path.join(real, dbFile);
  try {
    fs.closeSync(fs.openSync(db, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  }
  return real;
}

/**
 * The chmods that make everything below `dir` private: directories 0700, files 0600 (an owner's
 * executable bit kept). An entry of someone else, or writable by others, is refused: Airlock
 * opens what is in here.
 */
function collectFixes(dir: string, uid: number, depth: number, fixes: Array<[string, number]>): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) continue; // not followed, and Airlock writes none
    checkOwned(st, p, uid);
    const want = st.isDirectory() ? 0o700 : st.mode & 0o700;
    if ((st.mode & 0o777) !== want) fixes.push([p, want]);
    if (st.isDirectory() && depth < 8) collectFixes(p, uid, depth + 1, fixes);
  }
}
