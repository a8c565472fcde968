/**
 * zod/mini schemas of SubscribeToShard's input and events, built from the generated shapes. Only
 * `subscribe.ts` imports this module, dynamically, so zod is loaded on the first subscription. The
 * event schema is the reference that `parseSubscribeToShardEvent` (get-records-validation.ts), which
 * parses events at run time, is tested against.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShard.html
 */
import * as z from 'zod/mini';
import { lazySchema } from '../schema-helpers.ts';
import {
  BooleanObjectInputSchema,
  ChildShardListOutputSchema,
  ConsumerARNInputSchema,
  RecordListOutputSchema,
  SequenceNumberInputSchema,
  ShardIdInputSchema,
  ShardIteratorTypeInputSchema,
  StreamIdInputSchema,
  TimestampInputSchema,
} from '../shape-schemas.ts';

const StartingPositionInputSchema = /* @__PURE__ */ lazySchema(() =>
  z
    .strictObject(
      {
        Type: ShardIteratorTypeInputSchema(),
        SequenceNumber: z.optional(SequenceNumberInputSchema()),
        Timestamp: z.optional(TimestampInputSchema()),
      },
      { error: 'must be an object' },
    )
    .check(
      z.refine((p) => !/SEQUENCE_NUMBER$/.test(p.Type) || p.SequenceNumber !== undefined, {
        error: 'SequenceNumber is required with AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER',
      }),
      z.refine((p) => p.Type !== 'AT_TIMESTAMP' || p.Timestamp !== undefined, { error: 'Timestamp is required with AT_TIMESTAMP' }),
    ),
);

export const SubscribeToShardInputSchema = /* @__PURE__ */ lazySchema(() =>
  z.strictObject(
    {
      ConsumerARN: ConsumerARNInputSchema(),
      ShardId: ShardIdInputSchema(),
      StartingPosition: StartingPositionInputSchema(),
      StreamId: z.optional(StreamIdInputSchema()),
      DryRun: z.optional(BooleanObjectInputSchema()),
    },
    { error: 'must be an object' },
  ),
);

export const SubscribeToShardEventOutputSchema = /* @__PURE__ */ lazySchema(() =>
  z.looseObject(
    {
      Records: RecordListOutputSchema(),
      ContinuationSequenceNumber: z.optional(z.string()),
      MillisBehindLatest: z.number(),
      ChildShards: z.optional(ChildShardListOutputSchema()),
    },
    { error: 'must be an object' },
  ),
);
