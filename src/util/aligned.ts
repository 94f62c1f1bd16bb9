// Page-aligned buffers, for O_DIRECT writes. Node's Buffers come from malloc
// (16 bytes past a page boundary for large sizes), which O_DIRECT refuses
// with EINVAL; WebAssembly memory is page-aligned and zero-filled.
const WASM_PAGE = 65536;

// The one WebAssembly API used (the tsconfig has no DOM lib).
declare const WebAssembly: { Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer } };

export const WASM_ALIGN = WASM_PAGE;

export function alignedBuffer(size: number): Buffer {
  const mem = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(size / WASM_PAGE)) });
  return Buffer.from(mem.buffer, 0, size);
}

// sharedAlignedMemory: page-aligned memory that worker threads can fill
// without copying it back (shared WebAssembly memory is a SharedArrayBuffer).
export function sharedAlignedMemory(size: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(size / WASM_PAGE));
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
}
