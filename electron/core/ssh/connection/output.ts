/** A command's output as exec keeps it: capped per stream, listeners that cannot break it. */

/** Output of one stream, kept up to a cap; the rest is read and dropped so the remote never blocks. */
export class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    const room = this.max - this.size;
    if (room <= 0) {
      if (b.length) this.truncated = true;
      return;
    }
    const part = b.length > room ? b.subarray(0, room) : b;
    if (part.length < b.length) this.truncated = true;
    this.chunks.push(part);
    this.size += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

export function callSafely(cb: (chunk: Buffer) => void, chunk: Buffer): void {
  try {
    cb(chunk);
  } catch {
    // A listener's failure must not break the command.
  }
}
