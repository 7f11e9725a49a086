/**
 * The worker's connection to Temporal, from the same options as every client's
 * (src/temporal/connection.ts). Kept apart so that the API never loads the worker's native module.
 */
import { NativeConnection } from '@temporalio/worker';
import { temporalConnectionOptions, type TemporalSettings } from './connection';

export function connectTemporalWorker(settings: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect(temporalConnectionOptions(settings));
}
