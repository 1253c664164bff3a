// A process that logs through the CLI's logger and exits at once (test/log.test.ts): what was
// waiting in the batch must still reach stdout. argv[2]: how many lines; argv[3]: how it ends
// (`exit`: process.exit; `throw`: an uncaught exception).
import { createLogger } from '../../src/log.js';

const log = createLogger({ level: 'info', pretty: false });
const n = Number(process.argv[2]);
for (let i = 0; i < n; i++) log.info({ i }, 'line');
if (process.argv[3] === 'throw') throw new Error('crash after logging');
process.exit(0);
