// A growing list of chunk ends and 32-byte ids, as an index holds them
// (Float64Array + one Buffer), for the scans that collect an index.
export class IdList {
  private endsBuf = new Float64Array(1024);
  private idsBuf = Buffer.alloc(32 * 1024);
  private n = 0;

  // push: one more chunk, ending at END, with ID (32 bytes).
  push(end: number, id: Uint8Array): void {
    if (this.n === this.endsBuf.length) {
      const e = new Float64Array(this.n * 2);
      e.set(this.endsBuf);
      this.endsBuf = e;
      const d = Buffer.alloc(64 * this.n);
      this.idsBuf.copy(d);
      this.idsBuf = d;
    }
    this.endsBuf[this.n] = end;
    this.idsBuf.set(id, 32 * this.n);
    this.n++;
  }

  // done: the ends and ids pushed, trimmed to their count.
  done(): { ends: Float64Array; ids: Buffer } {
    return { ends: this.endsBuf.slice(0, this.n), ids: Buffer.from(this.idsBuf.subarray(0, 32 * this.n)) };
  }
}
