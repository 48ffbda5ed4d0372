# switchyard: build with the dev tools, run on a slim Node 20 image as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts
COPY src ./src
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/dashboard ./dist/dashboard
COPY package.json ./
COPY bin ./bin
COPY examples ./examples
COPY docker/switchyard.conf /etc/switchyard/switchyard.conf
# Docker lets unprivileged processes bind ports below 1024 in a container's own network
# namespace (net.ipv4.ip_unprivileged_port_start=0), so `listen 80` works as `node`.
USER node
EXPOSE 80
# The admin listener stays inside the container (loopback); the health check asks it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/api/upstreams').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["-c", "/etc/switchyard/switchyard.conf", "--admin", "127.0.0.1:9090"]
