// Start a hardhat network node on a loopback port (default: a free one) and print the URL as the
// first stdout line, the contract of ganache-server.js. With automining off (evm_setAutomine),
// transactions queue in the node's pool (future nonces wait for the gap to be filled, underpriced
// ones for the base fee to fall) until a block is mined (evm_mine, evm_setIntervalMining), as on
// geth.
// usage: node hardhat-server.js HARDHAT_MODULE_DIR CONFIG_DIR [HOST [PORT]]
// CONFIG_DIR holds the hardhat.config.js that nodeproc.start_hardhat writes.
"use strict";
process.chdir(process.argv[3]);
const hre = require(process.argv[2]);
const { JsonRpcServer } = require(process.argv[2] + "/internal/hardhat-network/jsonrpc/server");
const host = process.argv[4] || "127.0.0.1";
const port = Number(process.argv[5] || 0);
const server = new JsonRpcServer({ hostname: host, port, provider: hre.network.provider });
server.listen().then(
  (address) => console.log(`listening on http://${host}:${address.port} chain_id=${hre.network.config.chainId}`),
  (err) => {
    console.error(`hardhat: cannot listen on ${host}: ${err.message}`);
    process.exit(2);
  },
);
const stop = () => server.close().then(() => process.exit(0), () => process.exit(1));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
