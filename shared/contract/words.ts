import { z } from 'zod';

/**
 * Input errors in people's words. zod's own wording ("Too big: expected string to have
 * <=1048576 characters", "Invalid string: must match pattern /^[a-z]…$/") is schema jargon: no
 * message shown by the UI or the CLI may carry it. This is zod's global `customError`, so every
 * schema of the contract (in the core, the renderer and the CLI) says what is wrong in plain words,
 * while a message a schema declares itself ('6 digits', 'letters, digits, _ . -') still wins.
 */
type Issue = Parameters<NonNullable<z.core.$ZodConfig['customError']>>[0];

const count = (n: unknown, one: string, many = `${one}s`) => `${String(n)} ${Number(n) === 1 ? one : many}`;

const KIND: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  bigint: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a set of named fields',
  date: 'a date',
  null: 'empty',
};

const FORMAT: Record<string, string> = {
  email: 'an e-mail address',
  url: 'a URL',
  uuid: 'an identifier (UUID)',
  datetime: 'a date and time (ISO 8601)',
  date: 'a date (YYYY-MM-DD)',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
  base64: 'base64 text',
};

export function plainIssueMessage(iss: Issue): string {
  const i = iss as Issue & Record<string, unknown>;
  switch (iss.code) {
    case 'invalid_type':
      if (i.input === undefined) return 'is required';
      return `must be ${KIND[String(i.expected)] ?? String(i.expected)}`;
    case 'too_big': {
      const max = i.maximum;
      if (i.origin === 'string') return `is too long (at most ${count(max, 'character')})`;
      if (i.origin === 'array' || i.origin === 'set') return `has too many items (at most ${String(max)})`;
      return i.inclusive === false ? `must be less than ${String(max)}` : `must be at most ${String(max)}`;
    }
    case 'too_small': {
      const min = i.minimum;
      if (i.origin === 'string') return Number(min) === 1 ? 'must not be empty' : `is too short (at least ${count(min, 'character')})`;
      if (i.origin === 'array' || i.origin === 'set') return Number(min) === 1 ? 'must name at least one item' : `needs at least ${String(min)} items`;
      return i.inclusive === false ? `must be more than ${String(min)}` : `must be at least ${String(min)}`;
    }
    case 'invalid_format':
      if (i.format === 'starts_with') return `must start with "${String(i.prefix)}"`;
      if (i.format === 'ends_with') return `must end with "${String(i.suffix)}"`;
      if (i.format === 'includes') return `must contain "${String(i.includes)}"`;
      return FORMAT[String(i.format)] ? `must be ${FORMAT[String(i.format)]}` : 'is not in the expected form';
    case 'not_multiple_of':
      return `must be a multiple of ${String(i.divisor)}`;
    case 'unrecognized_keys': {
      const keys = (i.keys as string[] | undefined) ?? [];
      const shown = keys.slice(0, 5).map((k) => `"${k.slice(0, 40)}"`).join(', ');
      return `${keys.length === 1 ? 'has a field it does not take' : 'has fields it does not take'}: ${shown}${keys.length > 5 ? '…' : ''}`;
    }
    case 'invalid_value': {
      const values = ((i.values as unknown[] | undefined) ?? []).map((v) => String(v));
      return values.length === 1 ? `must be ${values[0]}` : `must be one of: ${values.slice(0, 12).join(', ')}${values.length > 12 ? '…' : ''}`;
    }
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'invalid_key':
      return 'has a key that is not accepted';
    case 'invalid_element':
      return 'has an item that is not accepted';
    default:
      return 'is not accepted';
  }
}

/** Wording that must never reach a person (zod's defaults, patterns, internals). */
export const SCHEMA_JARGON = /Too (big|small)|expected \w+ to|Invalid (string|input|option|type|element|key)|received|must match pattern|\/\^|\$\/|ZodError|nonoptional|Unrecognized key/i;

z.config({ customError: plainIssueMessage });
