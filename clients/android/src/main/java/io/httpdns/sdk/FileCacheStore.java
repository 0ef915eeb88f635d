package io.httpdns.sdk;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;

/**
 * {@link CacheStore} in one file, replaced atomically (write a temporary file, then rename) so a
 * crash mid-write leaves the previous snapshot. On Android use {@code new File(context.getCacheDir(), ...)}.
 */
public final class FileCacheStore implements CacheStore {
    private final File file;

    public FileCacheStore(File file) {
        this.file = file;
    }

    @Override
    public String load() throws IOException {
        if (!file.isFile()) return null;
        return new String(Files.readAllBytes(file.toPath()), "UTF-8");
    }

    @Override
    public void save(String snapshot) throws IOException {
        File dir = file.getAbsoluteFile().getParentFile();
        if (dir != null && !dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
        File tmp = new File(dir, file.getName() + ".tmp");
        OutputStream out = new FileOutputStream(tmp);
        try {
            out.write(snapshot.getBytes("UTF-8"));
            out.flush();
        } finally {
            out.close();
        }
        Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
