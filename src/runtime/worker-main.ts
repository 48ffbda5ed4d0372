// Entry point of a worker process (node:cluster runs this file).
import { runWorker } from './worker.js'

void runWorker()
