import { describe, expect, it } from 'vitest';
import { copyFeedback } from './clipboard';

describe('copyFeedback', () => {
  it('keeps the label when idle and announces nothing', () => {
    expect(copyFeedback('idle', 'Copy JSON')).toEqual({ label: 'Copy JSON', message: '' });
  });
  it('says Copied after a copy, and what to do after a failure', () => {
    expect(copyFeedback('copied', 'Copy JSON')).toEqual({ label: 'Copied', message: 'Copied to the clipboard.' });
    expect(copyFeedback('failed', 'Copy')).toEqual({ label: 'Copy failed', message: 'Copy failed: select the text and copy it.' });
  });
});
