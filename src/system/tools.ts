// The tool verbs in one import: one small function per tool verb, grouped by
// concern in disk.ts, fs.ts, attr.ts, boot.ts, compress.ts, vm.ts and lvm.ts.
export * from './disk.ts';
export * from './fs.ts';
export * from './attr.ts';
export * from './boot.ts';
export * from './compress.ts';
export * from './vm.ts';
export * from './lvm.ts';
