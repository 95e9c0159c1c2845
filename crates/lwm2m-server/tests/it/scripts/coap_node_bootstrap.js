// An LwM2M client written with coap-node (npm), an independent implementation: it bootstraps from the
// bootstrap server at 127.0.0.1:<port> (client-initiated, NoSec), then registers with the LwM2M server the
// bootstrap server provisioned. Usage: node coap_node_bootstrap.js <bootstrap-port> <endpoint>
// Prints one line per milestone: "bootstrap <status>", "bootstrapped", "registered".
const CoapNode = require('coap-node');
const SmartObject = require('smartobject');

const [port, ep] = process.argv.slice(2);
const so = new SmartObject();
so.init('temperature', 0, { sensorValue: 21.5, units: 'Cel' });
const node = new CoapNode(ep, so, { manuf: 'ipechain-test' });
node.on('bootstrapped', () => {
  console.log('bootstrapped');
  console.log('security ' + JSON.stringify(node.so.dumpSync('lwm2mSecurity')));
  console.log('server ' + JSON.stringify(node.so.dumpSync('lwm2mServer')));
});
node.on('registered', () => console.log('registered'));
// Report how the registration that follows the bootstrap went (coap-node itself does not).
const register = node.register.bind(node);
node.register = (ip, p, cb) =>
  register(ip, p, (err, rsp) => {
    console.log(`register ${ip}:${p} ` + (err ? 'error ' + err.message : rsp.status));
    if (cb) cb(err, rsp);
  });
node.on('error', (e) => console.log('error ' + e.message));
node.bootstrap('127.0.0.1', Number(port), (err, rsp) => {
  if (err) {
    console.log('bootstrap error ' + err.message);
    process.exit(1);
  }
  console.log('bootstrap ' + rsp.status);
});
setTimeout(() => process.exit(2), 60000);
