// mallorn._mallorn: the pybind11 glue. Arguments are converted while the GIL is held, the work in
// py_ops runs with it released (so threads patch in parallel), and results come back as plain
// dicts that mallorn/_api.py turns into the seed's dataclasses.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <ctime>

#include "mallorn/core/model_format.hpp"
#include "py_ops.hpp"

namespace py = pybind11;
using namespace mallorn;

namespace {

[[noreturn]] void raise(core::error e) { throw python::raised_error{std::move(e)}; }

// Runs f with the GIL released; f must not touch Python objects.
template <class F>
auto without_gil(F&& f) {
  py::gil_scoped_release nogil;
  return f();
}

template <class T>
T unwrap(core::result<T> r) {
  if (!r) raise(r.err());
  return std::move(r).value();
}

py::bytes to_bytes(std::span<const std::uint8_t> b) {
  return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
}

std::span<const std::uint8_t> view(const py::bytes& b) {
  char* data = nullptr;
  Py_ssize_t n = 0;
  if (PyBytes_AsStringAndSize(b.ptr(), &data, &n) != 0) throw py::error_already_set();
  return {reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(n)};
}

// str paths go through the filesystem encoding (surrogateescape), so undecodable names survive.
std::filesystem::path to_path(const py::str& s) {
  PyObject* encoded = PyUnicode_EncodeFSDefault(s.ptr());
  if (!encoded) throw py::error_already_set();
  auto owned = py::reinterpret_steal<py::bytes>(encoded);
  return std::filesystem::path(std::string(owned));
}

// bytes = the content itself (kept alive by the caller's argument), str = a path.
python::input to_input(const py::object& o, const char* what) {
  if (py::isinstance<py::bytes>(o)) return python::input::from_bytes(view(o.cast<py::bytes>()));
  if (py::isinstance<py::str>(o)) return python::input::from_path(to_path(o.cast<py::str>()));
  throw py::type_error(std::string(what) + " must be a path (str) or bytes");
}

core::ed25519_private_key private_key(const py::bytes& b) { return unwrap(core::ed25519_private_key_from(view(b))); }
core::ed25519_public_key public_key(const py::bytes& b) { return unwrap(core::ed25519_public_key_from(view(b))); }

using core::compression_name;

py::dict header_dict(const core::patch_header& h, std::uint64_t patch_size) {
  py::list tensors;
  for (const auto& s : h.tensor_stats)
    tensors.append(py::make_tuple(s.name, core::tensor_encoding_name(s.encoding), s.target_bytes, s.patch_bytes));
  py::dict d;
  d["format"] = std::string(core::format_name(h.format));
  d["version"] = h.version;
  d["profile"] = h.profile == core::patch_profile::mcu ? "mcu" : "standard";
  d["source_hash"] = to_bytes(h.source_sha256);
  d["target_hash"] = to_bytes(h.target_sha256);
  d["source_size"] = h.source_size;
  d["target_size"] = h.target_size;
  d["target_version"] = h.target_version;
  d["created_at"] = h.created_at;
  d["patch_size"] = patch_size;
  d["body_size"] = h.body_size;
  d["compression"] = compression_name(h.compression);
  d["level"] = h.level;
  d["neural"] = h.neural();
  d["signed"] = h.is_signed();
  d["tensors_modified"] = h.tensors_modified;
  d["tensors_unchanged"] = h.tensors_unchanged;
  d["tensors_added"] = h.tensors_added;
  d["tensors_removed"] = h.tensors_removed;
  d["tensors"] = tensors;
  return d;
}

py::dict create_patch(const py::object& source, const py::object& target, const py::str& output, int level,
                      bool neural, std::optional<py::bytes> key, std::uint64_t target_version, bool tensor_aware,
                      std::uint64_t created_at) {
  if (level < 1 || level > 22) raise(core::make_error(core::errc::invalid_argument,
                                                      "compression_level must be 1..22, got " + std::to_string(level)));
  formats::diff_options opts;
  opts.level = level;
  opts.neural = neural;
  opts.tensor_aware = tensor_aware;
  opts.target_version = target_version;
  opts.created_at = created_at;
  if (key) opts.signing_key = private_key(*key);
  auto old_in = to_input(source, "source"), new_in = to_input(target, "target");
  auto out = to_path(output);
  auto s = unwrap(without_gil([&] { return python::create_patch(old_in, new_in, out, opts); }));
  py::dict d;
  d["format"] = std::string(core::format_name(s.format));
  d["source_size"] = s.source_size;
  d["target_size"] = s.target_size;
  d["patch_size"] = s.patch_size;
  d["compression_ratio"] = s.compression_ratio;
  d["tensors_modified"] = s.tensors_modified;
  d["tensors_unchanged"] = s.tensors_unchanged;
  d["tensors_added"] = s.tensors_added;
  d["tensors_removed"] = s.tensors_removed;
  return d;
}

// Never raises for a failed check: the outcome says what failed (mallorn/_api.py decides).
py::dict apply_patch(const py::object& source, const py::object& patch, std::optional<py::str> output,
                     std::optional<py::bytes> key, std::optional<std::uint64_t> min_target_version) {
  core::apply_options opts;
  if (key) opts.public_key = public_key(*key);
  opts.min_target_version = min_target_version;
  auto old_in = to_input(source, "source"), patch_in = to_input(patch, "patch");
  std::optional<std::filesystem::path> out;
  if (output) out = to_path(*output);
  auto o = without_gil([&] { return python::apply_patch(old_in, patch_in, out, opts); });
  py::dict d;
  d["error"] = o.err ? py::object(py::make_tuple(static_cast<int>(o.err->code), o.err->message)) : py::none();
  d["header"] = o.header ? py::object(header_dict(*o.header, 0)) : py::none();
  d["actual_target"] = o.actual_target ? py::object(to_bytes(*o.actual_target)) : py::none();
  d["bytes_written"] = o.bytes_written;
  return d;
}

py::dict patch_info(const py::object& patch) {
  auto in = to_input(patch, "patch");
  auto i = unwrap(without_gil([&] { return python::read_header(in); }));
  return header_dict(i.header, i.patch_size);
}

std::uint64_t sign_patch(const py::object& patch, const py::bytes& key, const py::str& output) {
  auto k = private_key(key);
  auto in = to_input(patch, "patch");
  auto out = to_path(output);
  return unwrap(without_gil([&] { return python::sign_patch(in, k, out); }));
}

py::dict fingerprint(const py::str& model) {
  auto path = to_path(model);
  auto f = unwrap(without_gil([&] { return core::fingerprint_file(path); }));
  py::dict d;
  d["format"] = std::string(core::format_id(f.format));
  d["file_size"] = f.file_size;
  d["header_hash"] = f.header_hash;
  d["tail_hash"] = f.tail_hash;
  d["combined_hash"] = f.combined_hash;
  return d;
}

py::tuple generate_keypair() {
  auto kp = unwrap(without_gil([] { return core::ed25519_generate(); }));
  return py::make_tuple(to_bytes(kp.public_key), to_bytes(kp.private_key));
}

py::dict error_names() {
  py::dict d;
  for (int c = 1; c <= static_cast<int>(core::errc::downgrade_refused); ++c) d[py::int_(c)] = core::errc_name(static_cast<core::errc>(c));
  return d;
}

}  // namespace

PYBIND11_MODULE(_mallorn, m) {
  m.doc() = "Mallorn patch engine (C++ core); use the `mallorn` package, not this module.";

  // Errors become mallorn.MallornError subtypes, built by mallorn._errors from the stable code.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const python::raised_error& e) {
      try {
        py::object exc = py::module_::import("mallorn._errors")
                             .attr("error_from_code")(static_cast<int>(e.err.code), e.err.message);
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
      } catch (py::error_already_set& failed) {
        failed.restore();
      }
    }
  });

  m.def("create_patch", &create_patch, py::arg("source"), py::arg("target"), py::arg("output"), py::arg("level"),
        py::arg("neural"), py::arg("private_key"), py::arg("target_version"), py::arg("tensor_aware"),
        py::arg("created_at"));
  m.def("apply_patch", &apply_patch, py::arg("source"), py::arg("patch"), py::arg("output"), py::arg("public_key"),
        py::arg("min_target_version"));
  m.def("patch_info", &patch_info, py::arg("patch"));
  m.def("sign_patch", &sign_patch, py::arg("patch"), py::arg("private_key"), py::arg("output"));
  m.def("fingerprint", &fingerprint, py::arg("model"));
  m.def("generate_keypair", &generate_keypair);
  m.def("error_names", &error_names);
}
