/**
 * Save text as a file from the page: a Blob URL on a temporary <a download>. Nothing is fetched
 * and nothing is evaluated, so it works under the strict CSP (blob: is a navigation to a download,
 * not a script, style or connection). The Electron shell refuses downloads (hardening), so the
 * views offer "Copy" beside it.
 */
export function downloadText(fileName: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.className = 'offscreen';
  document.body.appendChild(a);
  try {
    a.click();
  } finally {
    a.remove();
    // The download has its own reference once started; let it begin before revoking.
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  }
}
