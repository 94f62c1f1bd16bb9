// Set at build time by esbuild (define); "dev" when run from sources.
declare const __REIMAGE_VERSION__: string | undefined;
export const VERSION: string = typeof __REIMAGE_VERSION__ === 'string' ? __REIMAGE_VERSION__ : '0.1.0-dev';
