/**
 * Async iterators over the paged operations. Each yields items, not pages, and follows whichever
 * continuation the operation uses: `NextToken`, or the older `HasMore…` flag with an
 * `ExclusiveStart…` key.
 */
import type { CallOptions, KinesisClient } from './client.ts';
import { describeStream } from './operations/describe-stream.ts';
import { listChannels } from './operations/list-channels.ts';
import { listShards } from './operations/list-shards.ts';
import { listStreamConsumers } from './operations/list-stream-consumers.ts';
import { listStreams } from './operations/list-streams.ts';
import { listTagsForStream } from './operations/list-tags-for-stream.ts';
import type {
  ChannelSummary,
  Consumer,
  DescribeStreamInput,
  ListChannelsInput,
  ListShardsInput,
  ListStreamConsumersInput,
  ListStreamsInput,
  ListTagsForStreamInput,
  Shard,
  StreamSummary,
  Tag,
} from './shapes.ts';

/**
 * Every stream of the account and region, as `StreamSummary` (built from `StreamNames` when the
 * service sends no summaries).
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListStreams.html
 */
export async function* listAllStreams(client: KinesisClient, input: ListStreamsInput = {}, options?: CallOptions): AsyncGenerator<StreamSummary> {
  let request: ListStreamsInput = { ...input };
  for (;;) {
    const page = await listStreams(client, request, options);
    const summaries = page.StreamSummaries ?? page.StreamNames.map((name) => ({ StreamName: name }) as StreamSummary);
    yield* summaries;
    if (page.NextToken) request = { NextToken: page.NextToken, ...(input.Limit ? { Limit: input.Limit } : {}) };
    else if (page.HasMoreStreams && page.StreamNames.length > 0) request = { ...input, ExclusiveStartStreamName: page.StreamNames.at(-1) };
    else return;
  }
}

/**
 * Every shard of a stream (with `ShardFilter` when given). After the first page only `NextToken`
 * is sent, as ListShards requires.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html
 */
export async function* listAllShards(client: KinesisClient, input: ListShardsInput, options?: CallOptions): AsyncGenerator<Shard> {
  let request: ListShardsInput = input;
  for (;;) {
    const page = await listShards(client, request, options);
    yield* page.Shards ?? [];
    if (!page.NextToken) return;
    request = { NextToken: page.NextToken, ...(input.MaxResults ? { MaxResults: input.MaxResults } : {}) };
  }
}

/**
 * Every shard, through DescribeStream's `HasMoreShards` / `ExclusiveStartShardId` paging.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeStream.html
 */
export async function* listAllDescribeStreamShards(client: KinesisClient, input: DescribeStreamInput, options?: CallOptions): AsyncGenerator<Shard> {
  let request = input;
  for (;;) {
    const { StreamDescription } = await describeStream(client, request, options);
    yield* StreamDescription.Shards;
    const last = StreamDescription.Shards.at(-1);
    if (!StreamDescription.HasMoreShards || !last) return;
    request = { ...input, ExclusiveStartShardId: last.ShardId };
  }
}

/** https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListStreamConsumers.html */
export async function* listAllStreamConsumers(client: KinesisClient, input: ListStreamConsumersInput, options?: CallOptions): AsyncGenerator<Consumer> {
  let request = input;
  for (;;) {
    const page = await listStreamConsumers(client, request, options);
    yield* page.Consumers ?? [];
    if (!page.NextToken) return;
    request = { StreamARN: input.StreamARN, NextToken: page.NextToken, ...(input.MaxResults ? { MaxResults: input.MaxResults } : {}) };
  }
}

/** https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListTagsForStream.html */
export async function* listAllTagsForStream(client: KinesisClient, input: ListTagsForStreamInput, options?: CallOptions): AsyncGenerator<Tag> {
  let request = input;
  for (;;) {
    const page = await listTagsForStream(client, request, options);
    yield* page.Tags;
    const last = page.Tags.at(-1);
    if (!page.HasMoreTags || !last) return;
    request = { ...input, ExclusiveStartTagKey: last.Key };
  }
}

/** https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListChannels.html */
export async function* listAllChannels(client: KinesisClient, input: ListChannelsInput = {}, options?: CallOptions): AsyncGenerator<ChannelSummary> {
  let request = input;
  for (;;) {
    const page = await listChannels(client, request, options);
    yield* page.ChannelSummaries;
    if (!page.NextToken) return;
    request = { ...input, NextToken: page.NextToken };
  }
}
