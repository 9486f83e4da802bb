/** A relay peer in a process of its own, for tests that kill it: `relay-process.ts <broker url> <storage file>`. */
import { Peer } from '../../peer';

const [url, storage] = process.argv.slice(2);
Peer.connect({ url, id: 'relay', storage, relay: { quotaPerSender: 1000 } }).then(
    () => console.log('relay registered'),
    error => {
        console.error(error);
        process.exit(1);
    },
);
