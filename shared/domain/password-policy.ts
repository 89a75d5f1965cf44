/**
 * The minimum password policy, shared so the UI can show the same message as the core
 * before it sends anything. The core enforces it (WEAK_PASSWORD) on first-run setup,
 * user creation, password resets, re-enabling and password changes.
 *
 * NIST SP 800-63B style: a length floor, a generous ceiling, no composition rules,
 * and a refusal of passwords that attackers try first.
 */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

/**
 * Passwords of 12 characters or more that appear near the top of public breach corpora.
 * (Shorter ones are refused by the length rule already.)
 */
const COMMON_LONG = new Set([
  '123456789012', '1234567890123', '12345678901234', '123456789123', '111111111111', '000000000000',
  '123123123123', '1q2w3e4r5t6y', '1qaz2wsx3edc', 'qwertyuiopasdfghjkl', 'qwertyuiop123', 'qwerty123456',
  'qwertyuiopas', 'asdfghjkl123', 'zxcvbnm123456', 'password1234', 'password12345', 'password123456',
  'passwordpassword', 'password1!password1!', 'iloveyou1234', 'iloveyouiloveyou', 'letmein12345',
  'welcome12345', 'welcome123456', 'administrator', 'administrator1', 'administrator123', 'adminadmin123',
  'changeme1234', 'changemenow!', 'trustno1trustno1', 'football1234', 'baseball1234', 'sunshine1234',
  'princess1234', 'superman1234', 'starwars1234', 'michael12345', 'computer1234', 'whatever1234',
  'qazwsxedcrfv', 'qazwsxedcrfvtgb', 'abcdefghijkl', 'abcd1234abcd', 'abc123abc123', 'a1b2c3d4e5f6',
  'p@ssw0rd1234', 'p@ssword1234', 'passw0rd1234', 'letmeinletmein', 'mypassword123', 'secretpassword',
  'thisismypassword', 'airlockairlock', 'airlock12345', 'airlockpassword',
]);

/** Bases that, with digits or symbols appended, make most "long" guesses. */
const COMMON_BASES = new Set([
  'password', 'passw0rd', 'p@ssw0rd', 'p@ssword', 'qwerty', 'qwertyuiop', 'asdfgh', 'zxcvbn', 'letmein',
  'welcome', 'admin', 'administrator', 'root', 'toor', 'iloveyou', 'monkey', 'dragon', 'football',
  'baseball', 'master', 'sunshine', 'princess', 'abc', 'abcd', 'login', 'trustno', 'changeme', 'secret',
  'airlock', 'default', 'guest', 'test', 'user', 'shadow', 'superman', 'batman', 'starwars', 'hello',
]);

const SEQUENCES = ['0123456789012345678901234567890', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiopasdfghjklzxcvbnm'];

/** Why a new password is refused, in words a person can act on; null when it passes. */
export function passwordProblem(password: string, userName?: string): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `Use at least ${PASSWORD_MIN} characters (this one has ${length}).`;
  if (length > PASSWORD_MAX) return `Use at most ${PASSWORD_MAX} characters (this one has ${length}).`;
  const lower = password.toLowerCase();
  const folded = lower.replace(/\s+/g, '');
  const name = userName?.toLowerCase();
  if (name && (folded === name || (folded.includes(name) && folded.length - name.length < 4))) {
    return 'The password must not be the user name (or the user name with a few characters added).';
  }
  if (COMMON_LONG.has(folded)) return 'This is one of the most commonly used passwords; choose another.';
  const base = folded.replace(/[^a-z@]+$/, '').replace(/^[^a-z@]+/, '');
  if (COMMON_BASES.has(base)) {
    return 'This is a common password with digits or symbols added; choose something less predictable.';
  }
  if (/^(.{1,4})\1+$/su.test(folded)) return 'The password must not be a short pattern repeated; choose another.';
  for (const seq of SEQUENCES) {
    if (seq.includes(folded) || [...seq].reverse().join('').includes(folded)) {
      return 'The password must not be a run of consecutive keys or digits; choose another.';
    }
  }
  return null;
}
