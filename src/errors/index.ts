export {
  GatehouseError,
  defineErrors,
  fileErrorReason,
  isGatehouseError,
  type ErrorKind,
  type ErrorSpec,
  type ErrorRegistry,
  type GatehouseErrorOptions,
} from './gatehouse-error.ts';
export { unwritableDirectoryReason } from './output-directory.ts';
