import { expect } from 'vitest';
import { AirlockError } from '../../shared/domain/errors';

/** The AirlockError `p` rejects with (the test fails if it resolves, or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<AirlockError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error('expected a rejection');
}
