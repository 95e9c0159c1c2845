'use strict';
// A Fabric chaincode written with fabric-contract-api, as any Fabric developer writes one: assets with
// events, composite keys, range queries (plain, paginated, by partial composite key), the client identity,
// key history, one call into another chaincode, and one call ipechain refuses (a rich query). Served by fabric-shim in server mode (chaincode as a service).
const { Contract } = require('fabric-contract-api');

class AssetContract extends Contract {
  constructor() {
    super('assets');
  }

  async create(ctx, id, color, owner) {
    const existing = await ctx.stub.getState(id);
    if (existing && existing.length > 0) {
      throw new Error(`asset ${id} already exists`);
    }
    const asset = { id, color, owner };
    await ctx.stub.putState(id, Buffer.from(JSON.stringify(asset)));
    await ctx.stub.putState(ctx.stub.createCompositeKey('color~id', [color, id]), Buffer.from([0]));
    ctx.stub.setEvent('AssetCreated', Buffer.from(JSON.stringify(asset)));
    return JSON.stringify(asset);
  }

  async read(ctx, id) {
    const b = await ctx.stub.getState(id);
    if (!b || b.length === 0) {
      throw new Error(`asset ${id} does not exist`);
    }
    return b.toString();
  }

  async transfer(ctx, id, owner) {
    const asset = JSON.parse(await this.read(ctx, id));
    asset.owner = owner;
    await ctx.stub.putState(id, Buffer.from(JSON.stringify(asset)));
    return JSON.stringify(asset);
  }

  async remove(ctx, id) {
    const asset = JSON.parse(await this.read(ctx, id));
    await ctx.stub.deleteState(id);
    await ctx.stub.deleteState(ctx.stub.createCompositeKey('color~id', [asset.color, id]));
  }

  async list(ctx, start, end) {
    const out = [];
    for await (const kv of ctx.stub.getStateByRange(start, end)) {
      out.push(JSON.parse(kv.value.toString()).id);
    }
    return JSON.stringify(out);
  }

  async byColor(ctx, color) {
    const out = [];
    for await (const kv of ctx.stub.getStateByPartialCompositeKey('color~id', [color])) {
      out.push(ctx.stub.splitCompositeKey(kv.key).attributes[1]);
    }
    return JSON.stringify(out);
  }

  async page(ctx, size, bookmark) {
    const { iterator, metadata } = await ctx.stub.getStateByRangeWithPagination('', '', parseInt(size, 10), bookmark);
    const ids = [];
    // The paginated iterator is a plain one (next/close), not an async iterable.
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      ids.push(JSON.parse(r.value.value.toString()).id);
    }
    await iterator.close();
    return JSON.stringify({ ids, bookmark: metadata.bookmark, count: metadata.fetchedRecordsCount });
  }

  // One call into another chaincode of the channel (ipechain's built-in `kv`): its write joins this
  // transaction under kv's namespace (and kv's endorsement policy); a chaincode the channel does not define
  // answers 404.
  async note(ctx, key, value) {
    const put = await ctx.stub.invokeChaincode('kv', ['put', key, value], '');
    const got = await ctx.stub.invokeChaincode('kv', ['get', key], '');
    const missing = await ctx.stub.invokeChaincode('nosuch', ['x'], '');
    return JSON.stringify({ put: put.status, got: got.payload.toString(), missing: missing.status });
  }

  // The key's history, newest first: who wrote what, and the deletes.
  async history(ctx, id) {
    const out = [];
    for await (const m of ctx.stub.getHistoryForKey(id)) {
      out.push({ tx: m.txId, owner: m.isDelete ? null : JSON.parse(m.value.toString()).owner, deleted: m.isDelete, seconds: m.timestamp.seconds });
    }
    return JSON.stringify(out);
  }

  async whoami(ctx) {
    return JSON.stringify({ msp: ctx.clientIdentity.getMSPID(), tx: ctx.stub.getTxID(), channel: ctx.stub.getChannelID() });
  }

  async rich(ctx) {
    const out = [];
    for await (const kv of ctx.stub.getQueryResult('{"selector":{}}')) {
      out.push(kv.key);
    }
    return JSON.stringify(out);
  }
}

module.exports.contracts = [AssetContract];
