// isUrl: a bundle location served over the network (http:// or https://),
// as opposed to a device location (LABEL=…:/dir) or a local path.
export const isUrl = (bundle: string) => /^https?:\/\//i.test(bundle);
