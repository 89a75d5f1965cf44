/**
 * `WWW-Authenticate` challenges (RFC 7235 §4.1, the auth-param grammar of RFC 9110 §11.2) as a
 * registry sends them: `Bearer realm="…",service="…",scope="…"`. Parsed by hand because the
 * grammar is small and no npm package for it is both maintained and dependency-free; quoted
 * strings with `\` escapes and commas inside quotes are handled, anything else is refused (null).
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

export function parseChallenges(header: string | null): Challenge[] | null {
  if (header === null) return null;
  if (header.length > 8192) return null;
  const out: Challenge[] = [];
  let s = header;
  const skipWs = () => {
    s = s.replace(/^[ \t]+/, '');
  };
  skipWs();
  while (s.length > 0) {
    const scheme = TOKEN.exec(s)?.[0];
    if (!scheme) return null;
    s = s.slice(scheme.length);
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: Object.create(null) as Record<string, string> };
    out.push(ch);
    skipWs();
    // auth-params until the next challenge (a token not followed by '=') or the end.
    for (;;) {
      while (s.startsWith(',')) {
        s = s.slice(1);
        skipWs();
      }
      if (s.length === 0) break;
      const name = TOKEN.exec(s)?.[0];
      if (!name) return null;
      const after = s.slice(name.length).replace(/^[ \t]+/, '');
      if (!after.startsWith('=')) break; // the next challenge's scheme
      s = after.slice(1).replace(/^[ \t]+/, '');
      let value: string;
      if (s.startsWith('"')) {
        let i = 1;
        value = '';
        for (; i < s.length && s[i] !== '"'; i++) {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
        }
        if (i >= s.length) return null; // unterminated
        s = s.slice(i + 1);
      } else {
        const t = TOKEN.exec(s)?.[0];
        if (!t) return null;
        value = t;
        s = s.slice(t.length);
      }
      const key = name.toLowerCase();
      if (key in ch.params) return null; // a repeated parameter is ambiguous: refused
      ch.params[key] = value;
      skipWs();
      if (s.length && !s.startsWith(',')) return null;
    }
  }
  return out;
}

/** The Bearer challenge of a registry's 401: realm (an http(s) URL), service and scope. */
export function bearerChallenge(header: string | null): { realm: string; service: string | null; scope: string | null } | null {
  const ch = parseChallenges(header)?.find((c) => c.scheme === 'bearer');
  if (!ch?.params.realm) return null;
  try {
    const u = new URL(ch.params.realm);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  } catch {
    return null;
  }
  return { realm: ch.params.realm, service: ch.params.service ?? null, scope: ch.params.scope ?? null };
}
