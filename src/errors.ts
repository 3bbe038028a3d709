/**
 * Typed errors. Every error that bad input can cause is one of these, and its message
 * names the file, row and column (data), the field (schema) or the argument (config).
 */

/** Base class of every error saco throws on purpose. */
export class SacoError extends Error {
  /** A stable machine-readable code, e.g. `DATA_NEGATIVE_COST`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Where in a data file a problem was found. Rows are 1-based data rows (header excluded). */
export interface DataLocation {
  file: string;
  row?: number;
  column?: string;
  value?: string;
}

/** Bad data: a value, a row or a whole file that cannot become trajectories. */
export class DataError extends SacoError {
  readonly file: string;
  readonly row?: number;
  readonly column?: string;
  readonly value?: string;
  constructor(code: string, detail: string, where: DataLocation) {
    const parts = [where.file];
    if (where.row !== undefined) parts.push(`row ${where.row}`);
    if (where.column !== undefined) parts.push(`column "${where.column}"`);
    const shown = where.value !== undefined ? ` (value: ${JSON.stringify(where.value)})` : '';
    super(code, `${parts.join(', ')}: ${detail}${shown}`);
    this.file = where.file;
    this.row = where.row;
    this.column = where.column;
    this.value = where.value;
  }
}

/** A schema that cannot be applied: unknown fields, a column named twice, wrong shapes. */
export class SchemaError extends SacoError {
  readonly field: string;
  constructor(field: string, detail: string, code = 'SCHEMA_INVALID') {
    super(code, `schema ${field}: ${detail}`);
    this.field = field;
  }
}

/** A bad argument to an API function or CLI flag. */
export class ArgumentError extends SacoError {
  readonly argument: string;
  constructor(argument: string, detail: string, code = 'ARGUMENT_INVALID') {
    super(code, `${argument}: ${detail}`);
    this.argument = argument;
  }
}

/**
 * An error raised by the native core: `NATIVE_ARGUMENT` (an input it refused), `NATIVE_STATE`
 * (a model or trainer that is unloaded, disposed or busy) or `NATIVE_FAILURE` (the work
 * itself failed). TypeScript validates first, so these mean a check is missing there.
 */
export class NativeError extends SacoError {}

/** An inference failure of the onnxruntime engine (a session that would not load, a worker that crashed), with its cause. */
export class InferenceError extends SacoError {
  constructor(detail: string, cause?: unknown) {
    super('INFERENCE_FAILED', detail);
    this.cause = cause;
  }
}
