"""crmlake's local file system (lib/jvm): the session's Hadoop writes through it, and it answers as
Hadoop's own does, with the two calls that forked a process (chmod, readlink) done in Java."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from crmlake.core.session import HADOOP_LOCAL_FS, NO_FORK_LOCAL_FS, local_fs_jar_name, no_fork_local_fs_settings
from py4j.protocol import Py4JJavaError

JAR = f"/repo/.jars/{local_fs_jar_name()}"
DELTA = "/repo/.jars/delta-spark_4.2_2.13-4.4.0.jar"


def test_the_session_writes_through_crmlakes_local_file_system(spark):
    jvm = spark._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    local = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf)
    context = jvm.org.apache.hadoop.fs.FileContext.getLocalFSFileContext(conf)
    classes = [local.getClass(), local.getRaw().getClass(), context.getDefaultFileSystem().getClass()]
    assert [str(c.getName()) for c in classes] == [
        "org.crmlake.fs.NoForkLocalFileSystem",
        "org.crmlake.fs.NoForkRawLocalFileSystem",
        "org.crmlake.fs.NoForkLocalFs",
    ]
    # on the driver's own class path, where Hadoop looks; not shipped again on spark.jars
    spark_conf = spark.sparkContext.getConf()
    assert Path(spark_conf.get("spark.driver.extraClassPath")).name == local_fs_jar_name()
    assert [j for j in spark_conf.get("spark.jars").split(",") if "crmlake-" in j] == []


def status_or_error(fs, path) -> tuple:
    """What getFileLinkStatus says of ``path``: the fields a caller reads, or the error's class."""
    try:
        st = fs.getFileLinkStatus(path)
    except Py4JJavaError as e:
        return ("error", e.java_exception.getClass().getName())
    target = str(st.getSymlink().toUri().getPath()) if st.isSymlink() else None
    return (str(st.getPath()), st.isFile(), st.isDirectory(), st.isSymlink(), target, st.getLen())


def test_link_status_and_permissions_are_those_hadoops_own_file_system_gives(spark, tmp_path):
    jvm = spark._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    ours = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf).getRaw()
    hadoops = jvm.org.apache.hadoop.fs.RawLocalFileSystem()
    hadoops.initialize(jvm.java.net.URI("file:///"), conf)
    (tmp_path / "file").write_text("twelve bytes")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "folder-link").symlink_to(tmp_path / "folder")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    names = ["file", "folder", "link", "folder-link", "dangling", "missing"]
    paths = {name: jvm.org.apache.hadoop.fs.Path(f"file://{tmp_path / name}") for name in names}
    theirs = {name: status_or_error(hadoops, paths[name]) for name in names}
    assert {name: status_or_error(ours, paths[name]) for name in names} == theirs
    assert theirs["missing"] == ("error", "java.io.FileNotFoundException")
    assert theirs["file"][1:] == (True, False, False, None, 12)

    fs_permission = jvm.org.apache.hadoop.fs.permission.FsPermission
    for mode in (0o640, 0o755, 0o600, 0o777, 0o000, 0o444):
        ours.setPermission(paths["file"], fs_permission(mode))
        assert stat.S_IMODE(os.stat(tmp_path / "file").st_mode) == mode, oct(mode)
    ours.setPermission(paths["folder"], fs_permission(0o1777))  # the sticky bit: Hadoop's own code
    assert stat.S_IMODE(os.stat(tmp_path / "folder").st_mode) == 0o1777
    with pytest.raises(Py4JJavaError) as missing:
        ours.setPermission(paths["missing"], fs_permission(0o644))
    assert missing.value.java_exception.getClass().getName() == "java.io.FileNotFoundException"


def test_a_delta_tables_files_get_the_mode_hadoops_umask_gives(spark, tmp_path):
    table = tmp_path / "t"
    for _ in range(2):
        spark.range(10).write.format("delta").mode("append").save(str(table))
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    umask = spark._jvm.org.apache.hadoop.fs.permission.FsPermission.getUMask(conf).toShort()
    files = [p for p in table.rglob("*") if p.is_file()]
    assert {p.name for p in (table / "_delta_log").glob("*.json")} == {
        "00000000000000000000.json",
        "00000000000000000001.json",
    }
    assert {p.relative_to(table).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files} == {
        p.relative_to(table).as_posix(): 0o666 & ~umask for p in files
    }
    assert spark.read.format("delta").load(str(table)).count() == 20


def test_the_jar_is_used_only_where_crmlake_starts_a_local_jvm_and_a_set_key_is_kept():
    jars = [DELTA, JAR]
    assert no_fork_local_fs_settings(jars, "local[2]", {}) == {**NO_FORK_LOCAL_FS, "spark.driver.extraClassPath": JAR}
    assert no_fork_local_fs_settings(jars, "", {}) == {**NO_FORK_LOCAL_FS, "spark.driver.extraClassPath": JAR}
    assert no_fork_local_fs_settings(jars, "spark://127.0.0.1:7077", {}) == {}
    assert no_fork_local_fs_settings([DELTA], "local[2]", {}) == {}
    # a jar built from other sources is not taken for it
    assert no_fork_local_fs_settings([DELTA, "/repo/.jars/crmlake-jvm-000000000000.jar"], "local[*]", {}) == {}
    assert no_fork_local_fs_settings(jars, "local[2]", HADOOP_LOCAL_FS) == {}
    assert no_fork_local_fs_settings(jars, "local[2]", dict(list(HADOOP_LOCAL_FS.items())[:1])) == {}
    assert no_fork_local_fs_settings(jars, "local[2]", {"spark.driver.extraClassPath": "/opt/x.jar"}) == {
        **NO_FORK_LOCAL_FS,
        "spark.driver.extraClassPath": f"/opt/x.jar{os.pathsep}{JAR}",
    }
