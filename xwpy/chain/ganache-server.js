// Start ganache on a loopback port (default: a free one) and print the URL as the first stdout
// line, the same contract as `python -m xwpy.chain.serve --port 0` (ganache's CLI refuses
// port 0). usage: node ganache-server.js GANACHE_MODULE_DIR OPTIONS_JSON [HOST [PORT]]
"use strict";
const ganache = require(process.argv[2]);
const options = JSON.parse(process.argv[3]);
const host = process.argv[4] || "127.0.0.1";
const port = Number(process.argv[5] || 0);
const server = ganache.server(options);
server.listen(port, host, (err) => {
  if (err) {
    console.error(`ganache: cannot listen on ${host}: ${err.message}`);
    process.exit(2);
  }
  const chainId = options.chain && options.chain.chainId;
  console.log(`listening on http://${host}:${server.address().port} chain_id=${chainId}`);
});
const stop = () => server.close().then(() => process.exit(0), () => process.exit(1));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
