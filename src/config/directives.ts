// Which directives switchyard understands, where each may appear, and how many arguments
// it takes; plus the names nginx knows that switchyard does not support yet, so that a
// real nginx config gets "not supported by switchyard yet" rather than "unknown".
import { DEFAULT_POLICY, policyDefinition, type PolicyDefinition } from '../balancer/registry.js'
import { ConfigError } from './errors.js'
import type { Statement } from './parser.js'

/** The blocks switchyard builds a model from. `main` is the top level of the file. */
export type Context = 'main' | 'events' | 'http' | 'server' | 'location' | 'upstream'

export interface DirectiveSpec {
  readonly name: string
  /** Where switchyard accepts the directive. */
  readonly contexts: readonly Context[]
  /** Where nginx accepts it, when that is wider (the rest is "not supported … yet"
   *  rather than "not allowed here"). Defaults to `contexts`. */
  readonly nginxContexts?: readonly Context[]
  /** True for `name … { }` directives. */
  readonly block: boolean
  readonly minArgs: number
  /** Infinity for "one or more". */
  readonly maxArgs: number
}

const HSL: readonly Context[] = ['http', 'server', 'location']
const many = Number.POSITIVE_INFINITY

const spec = (
  name: string,
  contexts: readonly Context[],
  args: readonly [number, number],
  extra: { block?: boolean; nginxContexts?: readonly Context[] } = {},
): DirectiveSpec => ({
  name,
  contexts,
  block: extra.block ?? false,
  minArgs: args[0],
  maxArgs: args[1],
  ...(extra.nginxContexts ? { nginxContexts: extra.nginxContexts } : {}),
})

/** Every directive switchyard supports. `include` is handled by the parser. A name may
 *  have one row per context when its meaning differs (`server` in http vs upstream). */
export const DIRECTIVES: readonly DirectiveSpec[] = [
  // main
  spec('worker_processes', ['main'], [1, 1]),
  spec('pid', ['main'], [1, 1]),
  spec('admin_listen', ['main'], [1, 2]),
  spec('error_log', ['main'], [1, many], { nginxContexts: ['main', ...HSL] }),
  spec('events', ['main'], [0, 0], { block: true }),
  spec('http', ['main'], [0, 0], { block: true }),
  // events
  spec('worker_connections', ['events'], [1, 1]),
  // http
  spec('upstream', ['http'], [1, 1], { block: true }),
  spec('server', ['http'], [0, 0], { block: true }),
  // NGINX Plus active health checks; `match` holds its own little language (build.ts).
  spec('match', ['http'], [1, 1], { block: true }),
  // upstream
  spec('server', ['upstream'], [1, many]),
  spec('keepalive', ['upstream'], [1, 1]),
  spec('keepalive_timeout', ['upstream'], [1, 1], { nginxContexts: ['upstream', ...HSL] }),
  spec('keepalive_requests', ['upstream'], [1, 1]),
  spec('keepalive_time', ['upstream'], [1, 1], { nginxContexts: ['upstream', ...HSL] }),
  // The tutorial's url_hash snippet: the old third-party module's hash choice. CRC-32 is
  // the only one (`hash` uses it), so the directive only checks its value.
  spec('hash_method', ['upstream'], [1, 1]),
  // A switchyard extension (Envoy's retry budget); on by default.
  spec('retry_budget', ['upstream'], [1, 2]),
  // NGINX Plus.
  spec('queue', ['upstream'], [1, 2]),
  // server
  spec('listen', ['server'], [1, many]),
  spec('server_name', ['server'], [1, many]),
  spec('location', ['server'], [1, 2], { block: true, nginxContexts: ['server', 'location'] }),
  // location
  spec('proxy_pass', ['location'], [1, 1]),
  spec('health_check', ['location'], [0, many]),
  // http, server and location
  spec('proxy_set_header', HSL, [2, 2]),
  spec('proxy_connect_timeout', HSL, [1, 1]),
  spec('proxy_read_timeout', HSL, [1, 1]),
  spec('proxy_send_timeout', HSL, [1, 1]),
  spec('proxy_next_upstream', HSL, [1, many]),
  spec('proxy_next_upstream_tries', HSL, [1, 1]),
  spec('proxy_next_upstream_timeout', HSL, [1, 1]),
  spec('proxy_http_version', HSL, [1, 1]),
  spec('client_max_body_size', HSL, [1, 1]),
  spec('client_body_buffer_size', HSL, [1, 1]),
  spec('proxy_request_buffering', HSL, [1, 1]),
  spec('access_log', HSL, [1, many]),
  spec('log_format', ['http'], [2, many]),
  // the edge: client limits and timeouts, access rules, real-ip (src/config/edge.ts).
  // The listener-wide ones stop at server level (nginx reads them before any location).
  spec('client_header_timeout', ['http', 'server'], [1, 1]),
  spec('client_body_timeout', HSL, [1, 1]),
  spec('send_timeout', HSL, [1, 1]),
  spec('keepalive_timeout', ['http', 'server'], [1, 2], { nginxContexts: HSL }),
  spec('keepalive_requests', HSL, [1, 1]),
  spec('large_client_header_buffers', ['http', 'server'], [2, 2]),
  spec('allow', HSL, [1, 1]),
  spec('deny', HSL, [1, 1]),
  spec('set_real_ip_from', HSL, [1, 1]),
  spec('real_ip_header', HSL, [1, 1]),
  spec('real_ip_recursive', HSL, [1, 1]),
  // TLS and HTTP/2 from clients (src/config/tls.ts).
  spec('ssl_certificate', ['http', 'server'], [1, 1]),
  spec('ssl_certificate_key', ['http', 'server'], [1, 1]),
  spec('ssl_protocols', ['http', 'server'], [1, many]),
  spec('ssl_ciphers', ['http', 'server'], [1, 1]),
  spec('ssl_session_timeout', ['http', 'server'], [1, 1]),
  spec('http2', ['http', 'server'], [1, 1]),
  // ngx_http_rewrite_module's `return` (nginx also allows it inside `if`).
  spec('return', ['server', 'location'], [1, 2]),
  // Request and connection limits (src/config/limits.ts, src/limits/).
  spec('limit_req_zone', ['http'], [3, 3]),
  spec('limit_conn_zone', ['http'], [2, 2]),
  spec('limit_req', HSL, [1, 3]),
  spec('limit_req_status', HSL, [1, 1]),
  spec('limit_req_log_level', HSL, [1, 1]),
  spec('limit_req_dry_run', HSL, [1, 1]),
  spec('limit_conn', HSL, [2, 2]),
  spec('limit_conn_status', HSL, [1, 1]),
  spec('limit_conn_log_level', HSL, [1, 1]),
  spec('limit_conn_dry_run', HSL, [1, 1]),
]

const byName = new Map<string, DirectiveSpec[]>()
for (const d of DIRECTIVES) byName.set(d.name, [...(byName.get(d.name) ?? []), d])

/** Names nginx (and the third-party modules people commonly build in) knows, that
 *  switchyard does not support yet. Balancing directives are listed too: the balancer
 *  registry is asked first, so a method becomes supported when its row is added there. */
const UNSUPPORTED = new Set(
  names(`
  # core and event modules
  accept_mutex accept_mutex_delay acceptex_read daemon debug_connection debug_points
  devpoll_changes devpoll_events env epoll_events eventport_events google_perftools_profiles
  iocp_threads kqueue_changes kqueue_events load_module lock_file master_process multi_accept
  pcre_jit post_acceptex quic_bpf ssl_engine ssl_object_cache_inheritable thread_pool
  timer_resolution use user worker_aio_requests worker_cpu_affinity worker_priority
  worker_rlimit_core worker_rlimit_nofile worker_shutdown_timeout working_directory
  # ngx_http_core_module and the upstream core
  absolute_redirect aio aio_write alias auth_delay chunked_transfer_encoding
  client_body_early_read client_body_in_file_only
  client_body_in_single_buffer client_body_temp_path
  client_header_buffer_size connection_pool_size default_type directio
  directio_alignment disable_symlinks early_hints error_page etag gzip_disable
  gzip_http_version gzip_proxied gzip_vary if_modified_since ignore_invalid_headers internal
  keepalive_disable keepalive_min_timeout
  limit_except limit_rate limit_rate_after lingering_close
  lingering_time lingering_timeout log_not_found log_subrequest max_headers max_ranges
  merge_slashes msie_padding msie_refresh open_file_cache open_file_cache_errors
  open_file_cache_events open_file_cache_min_uses open_file_cache_valid port_in_redirect
  post_action postpone_output read_ahead recursive_error_pages request_pool_size
  reset_timedout_connection resolver resolver_timeout root satisfy send_lowat
  sendfile sendfile_max_chunk server_name_in_redirect server_names_hash_bucket_size
  server_names_hash_max_size server_tokens subrequest_output_buffer_size tcp_nodelay
  tcp_nopush types types_hash_bucket_size types_hash_max_size underscores_in_headers
  variables_hash_bucket_size variables_hash_max_size
  # ngx_http_proxy_module (the parts switchyard does not do yet)
  proxy_bind proxy_buffer_size proxy_buffering proxy_buffers proxy_busy_buffers_size
  proxy_cache proxy_cache_background_update proxy_cache_bypass proxy_cache_convert_head
  proxy_cache_key proxy_cache_lock proxy_cache_lock_age proxy_cache_lock_timeout
  proxy_cache_max_range_offset proxy_cache_methods proxy_cache_min_uses proxy_cache_path
  proxy_cache_revalidate proxy_cache_use_stale proxy_cache_valid proxy_cookie_domain
  proxy_cookie_flags proxy_cookie_path proxy_force_ranges proxy_headers_hash_bucket_size
  proxy_headers_hash_max_size proxy_hide_header proxy_ignore_client_abort proxy_ignore_headers
  proxy_intercept_errors proxy_limit_rate proxy_max_temp_file_size proxy_method proxy_no_cache
  proxy_pass_header proxy_pass_request_body proxy_pass_request_headers proxy_pass_trailers
  proxy_redirect proxy_send_lowat proxy_set_body
  proxy_socket_keepalive proxy_socket_rcvbuf proxy_socket_sndbuf proxy_ssl_certificate
  proxy_ssl_certificate_cache proxy_ssl_certificate_key proxy_ssl_ciphers
  proxy_ssl_conf_command proxy_ssl_crl proxy_ssl_name proxy_ssl_password_file
  proxy_ssl_protocols proxy_ssl_server_name proxy_ssl_session_reuse
  proxy_ssl_trusted_certificate proxy_ssl_verify proxy_ssl_verify_depth proxy_store
  proxy_store_access proxy_temp_file_write_size proxy_temp_path
  # upstream modules: balancing methods not in the registry yet, zone, keepalive extras
  hash ip_hash least_conn least_time random sticky zone
  # other http modules (gzip, ssl, rewrite, map, fastcgi, grpc, …)
  add_after_body add_before_body add_header add_header_inherit add_trailer add_trailer_inherit
  addition_types ancient_browser ancient_browser_value auth_basic auth_basic_user_file
  auth_request auth_request_set autoindex autoindex_exact_size autoindex_format
  autoindex_localtime break charset charset_map charset_types create_full_put_path dav_access
  dav_methods degradation degrade empty_gif errmsg expires fastcgi_bind
  fastcgi_buffer_size fastcgi_buffering fastcgi_buffers fastcgi_busy_buffers_size
  fastcgi_cache fastcgi_cache_background_update fastcgi_cache_bypass fastcgi_cache_key
  fastcgi_cache_lock fastcgi_cache_lock_age fastcgi_cache_lock_timeout
  fastcgi_cache_max_range_offset fastcgi_cache_methods fastcgi_cache_min_uses
  fastcgi_cache_path fastcgi_cache_revalidate fastcgi_cache_use_stale fastcgi_cache_valid
  fastcgi_catch_stderr fastcgi_connect_timeout fastcgi_force_ranges fastcgi_hide_header
  fastcgi_ignore_client_abort fastcgi_ignore_headers fastcgi_index fastcgi_intercept_errors
  fastcgi_keep_conn fastcgi_limit_rate fastcgi_max_temp_file_size fastcgi_next_upstream
  fastcgi_next_upstream_timeout fastcgi_next_upstream_tries fastcgi_no_cache fastcgi_param
  fastcgi_pass fastcgi_pass_header fastcgi_pass_request_body fastcgi_pass_request_headers
  fastcgi_read_timeout fastcgi_request_buffering fastcgi_send_lowat fastcgi_send_timeout
  fastcgi_socket_keepalive fastcgi_socket_rcvbuf fastcgi_socket_sndbuf fastcgi_split_path_info
  fastcgi_store fastcgi_store_access fastcgi_temp_file_write_size fastcgi_temp_path flv geo
  geoip_city geoip_country geoip_org geoip_proxy geoip_proxy_recursive grpc_bind
  grpc_buffer_size grpc_connect_timeout grpc_hide_header grpc_ignore_headers
  grpc_intercept_errors grpc_next_upstream grpc_next_upstream_timeout grpc_next_upstream_tries
  grpc_pass grpc_pass_header grpc_read_timeout grpc_send_timeout grpc_set_header
  grpc_socket_keepalive grpc_socket_rcvbuf grpc_socket_sndbuf grpc_ssl_certificate
  grpc_ssl_certificate_cache grpc_ssl_certificate_key grpc_ssl_ciphers grpc_ssl_conf_command
  grpc_ssl_crl grpc_ssl_name grpc_ssl_password_file grpc_ssl_protocols grpc_ssl_server_name
  grpc_ssl_session_reuse grpc_ssl_trusted_certificate grpc_ssl_verify grpc_ssl_verify_depth
  gunzip gunzip_buffers gzip gzip_buffers gzip_comp_level gzip_hash gzip_min_length
  gzip_no_buffer gzip_static gzip_types gzip_window http2_body_preread_size
  http2_chunk_size http2_idle_timeout http2_max_concurrent_pushes http2_max_concurrent_streams
  http2_max_field_size http2_max_header_size http2_max_requests http2_pool_size http2_push
  http2_push_preload http2_recv_buffer_size http2_recv_timeout http2_streams_index_size http3
  http3_hq http3_max_concurrent_streams http3_stream_buffer_size if image_filter
  image_filter_buffer image_filter_interlace image_filter_jpeg_quality image_filter_sharpen
  image_filter_transparency image_filter_webp_quality index map map_hash_bucket_size
  map_hash_max_size memcached_bind memcached_buffer_size memcached_connect_timeout
  memcached_gzip_flag memcached_next_upstream memcached_next_upstream_timeout
  memcached_next_upstream_tries memcached_pass memcached_read_timeout memcached_send_timeout
  memcached_socket_keepalive min_delete_depth mirror mirror_request_body modern_browser
  modern_browser_value mp4 mp4_buffer_size mp4_max_buffer_size mp4_start_key_frame
  open_log_file_cache override_charset perl perl_modules perl_require perl_set
  postpone_gzipping quic_active_connection_id_limit quic_gso quic_host_key quic_retry
  random_index referer_hash_bucket_size referer_hash_max_size
  rewrite rewrite_log scgi_bind scgi_buffer_size scgi_buffering scgi_buffers
  scgi_busy_buffers_size scgi_cache scgi_cache_background_update scgi_cache_bypass
  scgi_cache_key scgi_cache_lock scgi_cache_lock_age scgi_cache_lock_timeout
  scgi_cache_max_range_offset scgi_cache_methods scgi_cache_min_uses scgi_cache_path
  scgi_cache_revalidate scgi_cache_use_stale scgi_cache_valid scgi_connect_timeout
  scgi_force_ranges scgi_hide_header scgi_ignore_client_abort scgi_ignore_headers
  scgi_intercept_errors scgi_limit_rate scgi_max_temp_file_size scgi_next_upstream
  scgi_next_upstream_timeout scgi_next_upstream_tries scgi_no_cache scgi_param scgi_pass
  scgi_pass_header scgi_pass_request_body scgi_pass_request_headers scgi_read_timeout
  scgi_request_buffering scgi_send_timeout scgi_socket_keepalive scgi_socket_rcvbuf
  scgi_socket_sndbuf scgi_store scgi_store_access scgi_temp_file_write_size scgi_temp_path
  secure_link secure_link_md5 secure_link_secret set slice source_charset
  split_clients ssi ssi_ignore_recycled_buffers ssi_last_modified ssi_min_file_chunk
  ssi_silent_errors ssi_types ssi_value_length ssl_buffer_size
  ssl_certificate_cache ssl_certificate_compression
  ssl_client_certificate ssl_conf_command ssl_crl ssl_dhparam ssl_early_data ssl_ecdh_curve
  ssl_ech_file ssl_ocsp ssl_ocsp_cache ssl_ocsp_responder ssl_password_file
  ssl_prefer_server_ciphers ssl_reject_handshake ssl_session_cache
  ssl_session_ticket_key ssl_session_tickets ssl_stapling
  ssl_stapling_file ssl_stapling_responder ssl_stapling_verify ssl_trusted_certificate
  ssl_verify_client ssl_verify_depth stub_status sub_filter sub_filter_last_modified
  sub_filter_once sub_filter_types try_files tunnel_bind tunnel_buffer_size
  tunnel_connect_timeout tunnel_next_upstream tunnel_next_upstream_timeout
  tunnel_next_upstream_tries tunnel_pass tunnel_read_timeout tunnel_send_lowat
  tunnel_send_timeout tunnel_socket_keepalive tunnel_socket_rcvbuf tunnel_socket_sndbuf
  uninitialized_variable_warn userid userid_domain userid_expires userid_flags userid_mark
  userid_name userid_p3p userid_path userid_service uwsgi_bind uwsgi_buffer_size
  uwsgi_buffering uwsgi_buffers uwsgi_busy_buffers_size uwsgi_cache
  uwsgi_cache_background_update uwsgi_cache_bypass uwsgi_cache_key uwsgi_cache_lock
  uwsgi_cache_lock_age uwsgi_cache_lock_timeout uwsgi_cache_max_range_offset
  uwsgi_cache_methods uwsgi_cache_min_uses uwsgi_cache_path uwsgi_cache_revalidate
  uwsgi_cache_use_stale uwsgi_cache_valid uwsgi_connect_timeout uwsgi_force_ranges
  uwsgi_hide_header uwsgi_ignore_client_abort uwsgi_ignore_headers uwsgi_intercept_errors
  uwsgi_limit_rate uwsgi_max_temp_file_size uwsgi_modifier1 uwsgi_modifier2
  uwsgi_next_upstream uwsgi_next_upstream_timeout uwsgi_next_upstream_tries uwsgi_no_cache
  uwsgi_param uwsgi_pass uwsgi_pass_header uwsgi_pass_request_body uwsgi_pass_request_headers
  uwsgi_read_timeout uwsgi_request_buffering uwsgi_send_timeout uwsgi_socket_keepalive
  uwsgi_socket_rcvbuf uwsgi_socket_sndbuf uwsgi_ssl_certificate uwsgi_ssl_certificate_cache
  uwsgi_ssl_certificate_key uwsgi_ssl_ciphers uwsgi_ssl_conf_command uwsgi_ssl_crl
  uwsgi_ssl_name uwsgi_ssl_password_file uwsgi_ssl_protocols uwsgi_ssl_server_name
  uwsgi_ssl_session_reuse uwsgi_ssl_trusted_certificate uwsgi_ssl_verify
  uwsgi_ssl_verify_depth uwsgi_store uwsgi_store_access uwsgi_string
  uwsgi_temp_file_write_size uwsgi_temp_path valid_referers xml_entities xml_external_entities
  xslt_last_modified xslt_param xslt_string_param xslt_stylesheet xslt_types
  # stream and mail modules
  auth_http auth_http_header auth_http_pass_client_cert auth_http_timeout imap_auth
  imap_capabilities imap_client_buffer mail max_errors pass pop3_auth pop3_capabilities
  preread_buffer_size preread_timeout protocol proxy proxy_buffer proxy_download_rate
  proxy_downstream_buffer proxy_half_close proxy_pass_error_message proxy_protocol
  proxy_protocol_timeout proxy_requests proxy_responses proxy_smtp_auth proxy_ssl
  proxy_ssl_alpn proxy_timeout proxy_upload_rate proxy_upstream_buffer smtp_auth
  smtp_capabilities smtp_client_buffer smtp_greeting_delay ssl_alpn ssl_handshake_timeout
  ssl_preread starttls stream timeout xclient
  # NGINX Plus and njs
  api auth_jwt auth_jwt_claim_set auth_jwt_header_set auth_jwt_key_cache auth_jwt_key_file
  auth_jwt_key_request auth_jwt_leeway auth_jwt_require auth_jwt_type f4f f4f_buffer_size
  health_check_timeout hls hls_buffers hls_forward_args hls_fragment
  hls_mp4_buffer_size hls_mp4_max_buffer_size internal_redirect js_access js_body_filter
  js_content js_engine js_fetch_buffer_size js_fetch_ciphers js_fetch_max_response_buffer_size
  js_fetch_protocols js_fetch_timeout js_fetch_trusted_certificate js_fetch_verify
  js_fetch_verify_depth js_header_filter js_import js_include js_path js_periodic
  js_preload_object js_preread js_set js_shared_dict_zone js_var keyval keyval_zone
  ntlm session_log session_log_format session_log_zone state status status_format
  status_zone zone_sync
  # third-party modules seen in the wild (upstream fair, url_hash, upstream check,
  # headers-more, lua, brotli, vts, geoip2, ModSecurity, echo)
  fair upstream_fair_shm_size hash_again check check_http_send
  check_http_expect_alive check_keepalive_requests check_shm_size check_status session_sticky
  sticky_cookie_insert consistent_hash more_set_headers more_clear_headers
  more_set_input_headers more_clear_input_headers lua_package_path lua_package_cpath
  lua_shared_dict lua_code_cache init_by_lua init_by_lua_block init_by_lua_file
  init_worker_by_lua_block set_by_lua set_by_lua_block set_by_lua_file content_by_lua
  content_by_lua_block content_by_lua_file rewrite_by_lua rewrite_by_lua_block
  rewrite_by_lua_file access_by_lua access_by_lua_block access_by_lua_file
  header_filter_by_lua_block body_filter_by_lua_block log_by_lua_block balancer_by_lua_block
  ssl_certificate_by_lua_block brotli brotli_static brotli_types brotli_comp_level
  brotli_window brotli_min_length vhost_traffic_status vhost_traffic_status_zone
  vhost_traffic_status_display vhost_traffic_status_display_format geoip2 modsecurity
  modsecurity_rules modsecurity_rules_file echo echo_before_body echo_after_body
  `),
)

function names(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join(' ')
    .split(/\s+/)
    .filter((n) => n !== '')
}

/** True when nginx (or a common module) has a directive of this name that switchyard
 *  does not support yet. */
export function isUnsupportedNginxDirective(name: string): boolean {
  return UNSUPPORTED.has(name)
}

/** What a statement turned out to be. */
export type ResolvedDirective =
  | { readonly kind: 'directive'; readonly spec: DirectiveSpec }
  | { readonly kind: 'balancing'; readonly policy: PolicyDefinition }

const contextLabel = (context: Context): string =>
  context === 'main' ? 'at the top level' : `inside "${context}"`

/**
 * Look a statement up for the block it is in and check its shape, or throw nginx's error
 * at its line. In order: a balancing method from the registry (inside `upstream`); a
 * directive of the table allowed here; then the errors — `"x" directive is not allowed
 * here`, `"x" directive is not supported … by switchyard yet`, `unknown directive "x"`;
 * then `directive "x" has no opening "{"` / `is not terminated by ";"` and
 * `invalid number of arguments in "x" directive`, as nginx checks them.
 */
export function resolveDirective(stmt: Statement, context: Context): ResolvedDirective {
  const { name } = stmt
  const fail = (reason: string): never => {
    throw new ConfigError(reason, stmt.source)
  }

  const policy = name === DEFAULT_POLICY ? undefined : policyDefinition(name)
  if (policy) {
    if (context !== 'upstream') fail(`"${name}" directive is not allowed here`)
    checkShape(stmt, { name, contexts: ['upstream'], block: false, minArgs: policy.minArgs, maxArgs: policy.maxArgs })
    return { kind: 'balancing', policy }
  }

  const rows = byName.get(name)
  if (rows) {
    const row = rows.find((r) => r.contexts.includes(context))
    if (row) {
      checkShape(stmt, row)
      return { kind: 'directive', spec: row }
    }
    if (rows.some((r) => (r.nginxContexts ?? r.contexts).includes(context))) {
      fail(`"${name}" directive is not supported ${contextLabel(context)} by switchyard yet`)
    }
    fail(`"${name}" directive is not allowed here`)
  }

  if (UNSUPPORTED.has(name)) fail(`"${name}" directive is not supported by switchyard yet`)
  return fail(`unknown directive "${name}"`)
}

function checkShape(stmt: Statement, row: DirectiveSpec): void {
  if (!row.block && stmt.block) {
    throw new ConfigError(`directive "${stmt.name}" is not terminated by ";"`, stmt.source)
  }
  if (row.block && !stmt.block) {
    throw new ConfigError(`directive "${stmt.name}" has no opening "{"`, stmt.source)
  }
  const n = stmt.args.length
  if (n < row.minArgs || n > row.maxArgs) {
    throw new ConfigError(`invalid number of arguments in "${stmt.name}" directive`, stmt.source)
  }
}
