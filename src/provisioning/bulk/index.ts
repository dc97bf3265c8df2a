/**
 * Bulk registration and supply-chain manifest import (issue 7): resumable bulk tasks over JSON lines or CSV,
 * manifest converters (Microchip, Espressif, PEM directory) and a device generator for tests and benchmarks.
 */
export { BulkTaskRunner, bulkPrivateKeyLabel, resealBulkPrivateKeys, type BulkTaskRunnerOptions, type BulkTaskView, type BulkTaskStatus, type CreateBulkTaskInput } from './bulk-task-runner.ts';
export { MAX_BULK_LINE_BYTES, readDeviceRecords, readRawRecords, splitCsvRecord, type BulkInputFormat, type DeviceRecord, type RawRecord } from './input-readers.ts';
export { generateDeviceLines, type GenerateDevicesOptions, type GeneratedDevice, type GeneratedMaterial } from './generate-devices.ts';
export { manifestEntryToBulkLine, type ManifestEntry, type ManifestRefusalCode } from './manifest-entry.ts';
export { convertMicrochipManifest, type MicrochipManifestOptions } from './manifest-microchip.ts';
export { convertEspressifManifest } from './manifest-espressif.ts';
export { convertPemDirectory } from './manifest-pem-dir.ts';
