// Caliper workload: each transaction puts a new key into the `kv` contract and waits for its commit.
'use strict';

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');

class PutWorkload extends WorkloadModuleBase {
  constructor() {
    super();
    this.sent = 0;
  }

  async submitTransaction() {
    this.sent += 1;
    await this.sutAdapter.sendRequests({
      contractId: 'kv',
      contractFunction: 'put',
      contractArguments: [`caliper-${this.workerIndex}-${this.sent}`, 'value'],
      readOnly: false,
    });
  }
}

module.exports.createWorkloadModule = () => new PutWorkload();
