import { useState } from 'react';
import type { AirlockErrorShape, Result } from '../../shared/domain/errors';

/** The file's text, read in the page: the core never takes a path from the UI. */
function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(typeof fr.result === 'string' ? fr.result : '');
    fr.onerror = () => reject(fr.error ?? new Error('read failed'));
    fr.readAsText(file);
  });
}

const sizeText = (n: number) => (n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`);

/**
 * A chosen file whose text is sent to one channel: the size bound (checked before reading), the
 * read, the busy flag, the error and the channel's answer, the same way in every form that takes
 * a file (playbook import, attestation verify, known_hosts/ssh_config import).
 */
export function useTextFile<T>(maxBytes: number) {
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [value, setValue] = useState<T | null>(null);

  /** Reads the file and calls `send` with its text; resolves to the answer when it succeeded. */
  async function submit(send: (text: string) => Promise<Result<T>>): Promise<T | null> {
    if (!file) return null;
    setError(null);
    setValue(null);
    if (file.size > maxBytes) {
      setError({ code: 'INVALID_INPUT', message: `${file.name} is larger than ${sizeText(maxBytes)}` });
      return null;
    }
    setBusy(true);
    try {
      let text: string;
      try {
        text = await readText(file);
      } catch (e) {
        setError({ code: 'INVALID_INPUT', message: `Could not read ${file.name}: ${e instanceof Error ? e.message : String(e)}` });
        return null;
      }
      const r = await send(text);
      if (!r.ok) {
        setError(r.error);
        return null;
      }
      setValue(r.value);
      return r.value;
    } finally {
      setBusy(false);
    }
  }

  /** A new file chosen: what was said about the last one no longer applies. */
  function pick(f: File | null) {
    setFile(f);
    setValue(null);
    setError(null);
  }

  return { file, pick, busy, error, value, submit };
}
