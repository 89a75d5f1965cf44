/**
 * Pushing files to a host over SFTP, for code outside `ssh/`: the public API of `ssh/sftp/`
 * (upload.ts: uploadFile; upload-state.ts: the part file and sidecar; remote-hash.ts: hashing on
 * the host; transfer.ts: the streams; fast-path.ts: packets without ssh2's copies). Code inside
 * `ssh/` imports those files directly.
 */
export { shellQuote } from './quote';
export { uploadFile, type UploadOptions, type UploadProgress, type UploadResult } from './sftp/upload';
export { PART_SUFFIX, SIDECAR_SUFFIX } from './sftp/upload-state';
